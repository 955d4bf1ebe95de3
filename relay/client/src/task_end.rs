//! How a supervised task ended, in words, for the agent's and the relay's core-task
//! supervisors (`agent/src/core_tasks.rs`, `relay/src/core_tasks.rs`).

use tokio::task::JoinError;

/// "returned early", "panicked: MESSAGE" or "was cancelled".
pub fn describe(result: Result<(), JoinError>) -> String {
    match result {
        Ok(()) => "returned early".to_owned(),
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            let text = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-text payload".to_owned());
            format!("panicked: {text}")
        }
        Err(_) => "was cancelled".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[tokio::test]
    async fn each_way_a_task_ends_is_told_in_words() {
        assert_eq!(describe(Ok(())), "returned early");
        let panicked = tokio::spawn(async { panic!("boom") }).await;
        assert_eq!(describe(panicked.map(|_: ()| ())), "panicked: boom");
        let formatted = tokio::spawn(async { panic!("{} left", 3) }).await;
        assert_eq!(describe(formatted.map(|_: ()| ())), "panicked: 3 left");
        let handle = tokio::spawn(std::future::pending::<()>());
        handle.abort();
        assert_eq!(describe(handle.await), "was cancelled");
    }
}
