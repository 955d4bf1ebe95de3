//! The script against real requests captured from OpenCode 1.18.33 (tools lists stripped).
//! Each fixture line is `{"body": <request>, "plan": <what the reference mock answered>}`.

use cm_test_model::{Reply, plan};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/opencode_requests.jsonl");

#[test]
fn captured_opencode_requests_get_the_reference_answers() {
    let mut checked = 0;
    for line in FIXTURE.lines().filter(|l| !l.trim().is_empty()) {
        let sample: Value = serde_json::from_str(line).unwrap();
        let expected = &sample["plan"];
        let reply = plan(&sample["body"]).unwrap();
        match expected[0].as_str().unwrap() {
            "text" => assert_eq!(reply.full_text().as_deref(), expected[1].as_str()),
            "tool" => assert_eq!(
                reply,
                Reply::ToolCall {
                    name: expected[1].as_str().unwrap().to_owned(),
                    arguments: expected[2].clone(),
                }
            ),
            other => panic!("fixture kind {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 5);
}
