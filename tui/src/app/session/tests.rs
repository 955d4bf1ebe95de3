//! The session view's own tests.

use super::*;
use crate::app::tests::text_message;

fn view(id: SessionRef) -> SessionView {
    let demo = WorkspaceName::try_from("demo").expect("valid");
    SessionView::new(&HostId::from("box"), demo, id, "fix the tests")
}

#[test]
fn the_session_view_scrolls_itself_and_hands_the_rest_to_the_app() {
    let id = SessionId::try_from("ses_1").expect("valid");
    let mut v = view(SessionRef::Id(id));
    assert_eq!(v.update(Action::SelectPrev, 10, 4), Outcome::Stay);
    assert_eq!(v.top(), Some(5), "one row up from the bottom");
    assert_eq!(v.update(Action::SelectLast, 10, 4), Outcome::Stay);
    assert_eq!(v.top(), None, "the bottom is followed again");
    assert_eq!(
        v.update(Action::NextBlock, 10, 4),
        Outcome::Notice("no tool calls or reasoning to select yet")
    );
    assert_eq!(
        v.update(Action::AllowOnce, 10, 4),
        Outcome::Answer(PermissionAnswer::Once)
    );
    assert_eq!(v.update(Action::Abort, 10, 4), Outcome::Abort);
    assert_eq!(v.update(Action::Back, 10, 4), Outcome::Back);
    assert_eq!(v.update(Action::FocusPrompt, 10, 4), Outcome::Stay);
    assert!(v.focus);

    let mut draft = view(SessionRef::Draft);
    assert_eq!(
        draft.update(Action::Abort, 10, 4),
        Outcome::Stay,
        "nothing to abort before the first prompt"
    );
    assert_eq!(draft.update(Action::ShowDiff, 10, 4), Outcome::Stay);
}

#[test]
fn the_session_view_takes_only_the_history_it_asked_for() {
    let id = SessionId::try_from("ses_1").expect("valid");
    let mut v = view(SessionRef::Id(id));
    v.history_request = Some(3);
    v.history_loaded(2, vec![text_message("msg_1", "user", "prt_1", "stale")]);
    assert!(!v.loaded, "an older request's answer is ignored");
    v.history_failed(3, &CallError::transport("gone\u{1b}[2J"));
    assert_eq!(v.error.as_deref(), Some("gone"));
    v.history_request = Some(4);
    v.history_loaded(4, vec![text_message("msg_1", "user", "prt_1", "hi")]);
    assert!(v.loaded && v.error.is_none());
}

#[test]
fn the_prompt_box_edits_itself_and_asks_the_app_to_send() {
    let id = SessionId::try_from("ses_1").expect("valid");
    let mut v = view(SessionRef::Id(id));
    let mut history = History::default();
    history.push("earlier");
    for c in "hi".chars() {
        assert_eq!(
            v.prompt_key(None, Some(c), &mut history),
            PromptOutcome::Stay
        );
    }
    assert_eq!(v.editor.text(), "hi");
    v.prompt_key(Some(Action::ClearLine), None, &mut history);
    v.prompt_key(Some(Action::CursorUp), None, &mut history);
    assert_eq!(
        v.editor.text(),
        "earlier",
        "up at the top walks the history"
    );
    assert_eq!(
        v.prompt_key(Some(Action::Send), None, &mut history),
        PromptOutcome::Send
    );
}
