//! Prompts in the audit trail: the relay reads the one body frame of a `prompt` stream it is
//! about to forward (bounded by the frame limit and the handshake timeout), records the BLAKE3
//! hash of the text (or, with `audit_prompt_text = true`, the text itself), and puts the frame
//! back exactly as it arrived, so what reaches the agent is byte-identical.

use super::Shared;
use super::error::RequestError;
use crate::framed::FramedRecv;
use proto::frame::MAX_FRAME_LEN;
use proto::header::Op;
use proto::op;
use proto::operation::Operation;

/// What the audit row says about a prompt encrypted to its host.
pub(crate) const SEALED_NOTE: &str = "prompt sealed to the host";

/// What the audit row says about a prompt's text.
pub(crate) fn note(text: &str, full_text: bool) -> String {
    if full_text {
        format!("prompt text: {text}")
    } else {
        format!("prompt blake3:{}", blake3::hash(text.as_bytes()).to_hex())
    }
}

/// Reads the prompt body, returns its audit note, and leaves the frame in `recv` unchanged.
///
/// # Errors
/// No body in time, or a body that is not a prompt (the agent would refuse it too).
pub(crate) async fn peek(shared: &Shared, recv: &mut FramedRecv) -> Result<String, RequestError> {
    recv.set_max_len(MAX_FRAME_LEN);
    let body = super::body::read_raw(recv, Op::Prompt, shared.config.handshake_timeout)
        .await?
        .ok_or(RequestError::NoBody(Op::Prompt))?;
    let prompt: Result<<op::Prompt as Operation>::Body, _> = proto::frame::parse_json(&body);
    let note = match prompt {
        Ok(prompt) => note(&prompt.text, shared.config.audit_prompt_text),
        // Encrypted to the host (zero-trust, for the offline queue): opaque here; the signed
        // header's body hash stands in for the text's.
        Err(_) if std::str::from_utf8(&body).is_ok_and(crate::store::is_sealed_body) => {
            SEALED_NOTE.to_owned()
        }
        Err(e) => {
            return Err(RequestError::BadBody {
                op: Op::Prompt,
                detail: e.to_string(),
            });
        }
    };
    recv.unread_frame(&body);
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_by_default_full_text_when_configured() {
        let n = note("fix the flaky test", false);
        assert_eq!(
            n,
            format!(
                "prompt blake3:{}",
                blake3::hash(b"fix the flaky test").to_hex()
            )
        );
        assert!(!n.contains("flaky"));
        assert_eq!(note("fix it", true), "prompt text: fix it");
    }
}
