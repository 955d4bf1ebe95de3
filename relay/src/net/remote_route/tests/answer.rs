//! The agent's relay holds its `open` answer for the agent's first bytes when the operator
//! already sent everything, so that both go to the operator's relay in one write: the stream
//! still opens for an agent that says nothing yet, and an answer in pieces arrives whole.

use super::*;

#[tokio::test]
async fn a_finished_operator_stream_is_answered_open_before_the_agent_says_anything() {
    let (a, b) = (relay("a"), relay("b"));
    register(&a, &b);
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let mut headers = agent_gated(&b, "h", Some(Arc::clone(&gate))).await;
    let holders = holding(&a, "h", &[&b]);
    // The operator sent its whole request: b holds its answer for the agent's first bytes, but
    // not for an agent that says nothing yet.
    let (mut op, _) = operator(b"ping", true).await;
    let (_send, mut recv, sent) =
        open_guarded(&a, &holders, &mut op, "answered while the agent was silent").await;
    assert_eq!(sent, 4);
    assert_eq!(headers.recv().await.unwrap(), forward_header("h"));
    gate.add_permits(1);
    let answer = tokio::time::timeout(HANG_GUARD, recv.read_to_end(1 << 20))
        .await
        .expect("the agent's answer arrived")
        .unwrap();
    assert_eq!(answer, b"echo:ping");
}

#[tokio::test]
async fn an_answer_in_several_pieces_arrives_whole_behind_the_open_answer() {
    let (a, b) = (relay("a"), relay("b"));
    register(&a, &b);
    let _headers = agent_on(&b, "h").await;
    let holders = holding(&a, "h", &[&b]);
    // The agent echoes in two writes ("echo:", then the body); a body larger than a packet
    // comes in several chunks besides.
    let body: Vec<u8> = (0..3 * 1024).map(|i| (i % 251) as u8).collect();
    let answer = send_body(&a, &holders, "h", &body).await.unwrap();
    assert_eq!(&answer[..5], b"echo:");
    assert!(answer[5..] == body[..], "every piece arrived, in order");
}
