//! A closed stdout pipe (`cm-tui messages … | head -3`) ends the program quietly, as a shell
//! pipeline would, instead of a panic with a backtrace. Rust ignores SIGPIPE, so `println!`
//! panics with "failed printing to stdout: Broken pipe"; the hook installed here turns exactly
//! that panic into exit status 141 (128 + SIGPIPE) and hands every other panic to the hook that
//! was installed before it.

/// Exit status of a program stopped by SIGPIPE in a shell (128 + 13).
pub const BROKEN_PIPE_STATUS: u8 = 141;

/// Whether a panic message is the standard library's "stdout/stderr is a closed pipe" one.
#[must_use]
pub fn is_broken_pipe_message(message: &str) -> bool {
    message.starts_with("failed printing to std")
        && (message.contains("Broken pipe") || message.contains("os error 32"))
}

/// Whether an I/O error (possibly wrapped) is a closed pipe.
#[must_use]
pub fn is_broken_pipe(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::BrokenPipe
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Ends the process with [`BROKEN_PIPE_STATUS`], printing nothing.
pub fn exit_broken_pipe() -> ! {
    #[allow(
        clippy::exit,
        reason = "the reader of our output is gone: end quietly like a shell pipeline"
    )]
    std::process::exit(i32::from(BROKEN_PIPE_STATUS))
}

/// Installs the panic hook; call it first thing in `main`. Hooks installed later (the TUI's
/// terminal-restoring one) chain to it.
pub fn quiet_broken_pipe() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        if message.is_some_and(is_broken_pipe_message) {
            exit_broken_pipe();
        }
        previous(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_closed_pipe_message_is_recognised() {
        assert!(is_broken_pipe_message(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_broken_pipe_message(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_broken_pipe_message("index out of bounds"));
    }

    #[test]
    fn a_wrapped_broken_pipe_error_is_found() {
        let io = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&io));
        let other = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(!is_broken_pipe(&other));
    }
}
