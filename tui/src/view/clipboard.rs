//! The OSC 52 sequence that asks the terminal to put text on the local clipboard (it works
//! over SSH; terminals that do not support it ignore it).

use base64::Engine;

/// `ESC ] 52 ; c ; <base64 text> BEL`. The text is base64, so nothing in it can end the
/// sequence early or start another one.
pub fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{encoded}\x07")
}

#[cfg(test)]
mod tests {
    use super::osc52;

    #[test]
    fn the_text_is_base64_inside_one_osc_52_sequence() {
        assert_eq!(osc52("cm-invite-abc"), "\x1b]52;c;Y20taW52aXRlLWFiYw==\x07");
        let evil = osc52("x\x07\x1b]52;c;ZXZpbA==\x07");
        assert_eq!(evil.matches('\x07').count(), 1, "{evil:?}");
        assert_eq!(evil.matches('\x1b').count(), 1, "{evil:?}");
    }
}
