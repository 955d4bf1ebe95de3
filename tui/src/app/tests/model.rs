//! The model picker: `M` asks the host what it offers, Enter picks, the session's following
//! prompts name the pick.

use super::*;
use crate::call::Call;
use crate::keymap::Context;
use proto::ops::{AgentChoice, ModelCatalog, ModelChoice};

pub(crate) fn catalog() -> ModelCatalog {
    let model = |provider: &str, model: &str, name: &str, default: bool| ModelChoice {
        provider: provider.into(),
        model: model.into(),
        name: name.into(),
        default,
    };
    ModelCatalog {
        models: vec![
            model("anthropic", "claude-sonnet-4", "Claude Sonnet 4", true),
            model("openai", "gpt-5", "GPT-5", false),
        ],
        default: Some("anthropic/claude-sonnet-4".into()),
        agents: vec![
            AgentChoice {
                name: "build".into(),
                description: Some("writes code".into()),
            },
            AgentChoice {
                name: "plan".into(),
                description: None,
            },
        ],
        allowed: Vec::new(),
    }
}

/// On the session screen with the picker open (the host offered [`catalog`]).
pub(crate) fn at_picker() -> Drive {
    let mut d = Drive::at_session();
    d.key('M');
    d.answer(Op::ModelList, Response::Models(catalog()));
    d
}

#[test]
fn m_lists_the_models_and_enter_makes_the_following_prompts_name_the_pick() {
    let mut d = Drive::at_session();
    d.key('M');
    let asked = d.take(Op::ModelList);
    assert_eq!(asked.call, Call::ModelList);
    assert_eq!(
        asked.scope,
        crate::call::Scope::workspace(&"box".into(), "demo")
    );
    d.net(NetEvent::Reply {
        request: asked,
        result: Ok(Response::Models(catalog())),
    });
    assert_eq!(d.app.context(), Context::ModelPicker);

    // default, anthropic/…, openai/gpt-5: two down, Enter.
    d.key('j').key('j').code(KeyCode::Enter);
    assert_eq!(d.app.context(), Context::Session, "Enter closes the picker");
    assert_eq!(d.session().pick.model.as_deref(), Some("openai/gpt-5"));

    // Again for the agent: default model, 2 models, default agent, build, plan.
    d.key('M');
    d.answer(Op::ModelList, Response::Models(catalog()));
    for _ in 0..5 {
        d.key('j');
    }
    d.code(KeyCode::Enter);
    assert_eq!(d.session().pick.agent.as_deref(), Some("plan"));

    d.key('i').typed("fix it").code(KeyCode::Enter);
    match d.take(Op::Prompt).call {
        Call::Prompt(p) => {
            assert_eq!(p.model.as_deref(), Some("openai/gpt-5"));
            assert_eq!(p.agent.as_deref(), Some("plan"));
        }
        other => panic!("not a prompt: {other:?}"),
    }
}

#[test]
fn without_a_pick_prompts_name_no_model_and_esc_keeps_the_choice() {
    let mut d = at_picker();
    d.key('j').code(KeyCode::Esc);
    assert_eq!(d.app.context(), Context::Session);
    assert_eq!(d.session().pick.model, None, "Esc picks nothing");
    d.key('i').typed("hi").code(KeyCode::Enter);
    match d.take(Op::Prompt).call {
        Call::Prompt(p) => assert_eq!((p.model, p.agent), (None, None)),
        other => panic!("not a prompt: {other:?}"),
    }
}

#[test]
fn a_refused_model_list_opens_nothing_and_says_why() {
    let mut d = Drive::at_session();
    d.key('M');
    let request = d.take(Op::ModelList);
    d.net(NetEvent::Reply {
        request,
        result: Err(crate::call::CallError::refused(
            proto::wire_error::ErrorCode::Forbidden,
            "viewer",
        )),
    });
    assert_eq!(d.app.context(), Context::Session);
    assert!(d.app.model_picker().is_none());
}
