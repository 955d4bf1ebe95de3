//! Which models and agents an operator may pick for a prompt: what the workspace's OpenCode
//! offers (`GET /config/providers`, `GET /agent`), narrowed by the host's
//! `[opencode] allowed_models` patterns. Pure: the client fetches, this decides.

use proto::ops::{AgentChoice, ModelCatalog, ModelChoice};
use serde_json::Value;

/// Why a prompt's model or agent is refused. Each message names what may be picked instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    /// Not `provider/model`.
    #[error("model {0:?} must look like provider/model (see `cm-tui models HOST WORKSPACE`)")]
    Malformed(String),
    /// The host's `[opencode] allowed_models` does not match it.
    #[error(
        "model {model} is not allowed on this host: its [opencode] allowed_models permits {allowed}"
    )]
    NotAllowed {
        /// The model asked for.
        model: String,
        /// The host's patterns.
        allowed: String,
    },
    /// OpenCode does not offer it.
    #[error("model {model} is not offered by this host's OpenCode; pick one of: {offered}")]
    NotOffered {
        /// The model asked for.
        model: String,
        /// What may be picked.
        offered: String,
    },
    /// The host restricts models, none was picked, and no allowed default exists.
    #[error(
        "this host allows only the models {allowed} and none of them is OpenCode's default; \
         pick one with --model (see `cm-tui models HOST WORKSPACE`)"
    )]
    NeedsModel {
        /// The host's patterns.
        allowed: String,
    },
    /// OpenCode has no such primary agent.
    #[error("agent {agent:?} is not offered by this host's OpenCode; pick one of: {offered}")]
    UnknownAgent {
        /// The agent asked for.
        agent: String,
        /// What may be picked.
        offered: String,
    },
}

/// Whether `reference` (`provider/model`) matches one of `patterns`; `*` matches any run of
/// characters. No patterns: everything is allowed.
pub fn allowed(patterns: &[String], reference: &str) -> bool {
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| glob(p.as_bytes(), reference.as_bytes()))
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob(rest, &text[i..])),
        Some((c, rest)) => text
            .split_first()
            .is_some_and(|(t, tail)| t == c && glob(rest, tail)),
    }
}

/// Refuses a model outside the host's patterns, before anything asks OpenCode.
///
/// # Errors
/// [`ChoiceError::Malformed`] or [`ChoiceError::NotAllowed`].
pub fn check_host_allows(patterns: &[String], model: &str) -> Result<(), ChoiceError> {
    if split(model).is_none() {
        return Err(ChoiceError::Malformed(model.to_owned()));
    }
    if allowed(patterns, model) {
        Ok(())
    } else {
        Err(ChoiceError::NotAllowed {
            model: model.to_owned(),
            allowed: patterns.join(", "),
        })
    }
}

/// `provider/model` split at the first `/`, both parts non-empty.
pub fn split(model: &str) -> Option<(&str, &str)> {
    model
        .split_once('/')
        .filter(|(p, m)| !p.is_empty() && !m.is_empty())
}

/// The catalog from OpenCode's answers to `GET /config/providers` and `GET /agent`, keeping only
/// models the host's patterns allow and agents a prompt can name (not subagents, not hidden).
/// `configured` is the host's `[opencode] model`, the default OpenCode uses; without it, the
/// first provider's default in OpenCode's answer.
pub fn catalog(
    providers: &Value,
    agents: &Value,
    patterns: &[String],
    configured: Option<&str>,
) -> ModelCatalog {
    let defaults = providers.get("default").and_then(Value::as_object);
    let mut default = configured.map(str::to_owned);
    let mut models = Vec::new();
    for p in providers
        .get("providers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(pid) = p.get("id").and_then(Value::as_str) else {
            continue;
        };
        let provider_default = defaults.and_then(|d| d.get(pid)).and_then(Value::as_str);
        for (mid, m) in p
            .get("models")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let choice = ModelChoice {
                provider: pid.to_owned(),
                model: mid.clone(),
                name: m
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or(mid)
                    .to_owned(),
                default: false,
            };
            if allowed(patterns, &choice.reference()) {
                models.push(choice);
            }
        }
        if default.is_none()
            && let Some(mid) = provider_default
        {
            default = Some(format!("{pid}/{mid}"));
        }
    }
    models.sort_by_key(ModelChoice::reference);
    let default = default.filter(|d| models.iter().any(|m| &m.reference() == d));
    for m in &mut models {
        m.default = default.as_deref() == Some(m.reference().as_str());
    }
    let mut agents: Vec<AgentChoice> = agents
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a.get("mode").and_then(Value::as_str) != Some("subagent"))
        .filter(|a| a.get("hidden").and_then(Value::as_bool) != Some(true))
        // An agent that names its own model runs on it: offered only if the host allows it.
        .filter(|a| agent_model(a).is_none_or(|m| allowed(patterns, &m)))
        .filter_map(|a| {
            Some(AgentChoice {
                name: a.get("name")?.as_str()?.to_owned(),
                description: a
                    .get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            })
        })
        .collect();
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    ModelCatalog {
        models,
        default,
        agents,
        allowed: patterns.to_vec(),
    }
}

/// Checks a prompt's choices against the catalog: the model must be listed (the catalog is
/// already narrowed by the host), the agent must be one of its agents.
///
/// # Errors
/// Which choice is refused, naming what may be picked.
pub fn check_choice(
    catalog: &ModelCatalog,
    model: Option<&str>,
    agent: Option<&str>,
) -> Result<(), ChoiceError> {
    if let Some(model) = model {
        check_host_allows(&catalog.allowed, model)?;
        if !catalog.models.iter().any(|m| m.reference() == model) {
            let offered: Vec<String> = catalog.models.iter().map(ModelChoice::reference).collect();
            return Err(ChoiceError::NotOffered {
                model: model.to_owned(),
                offered: list_or_none(&offered),
            });
        }
    }
    if let Some(agent) = agent
        && !catalog.agents.iter().any(|a| a.name == agent)
    {
        let offered: Vec<String> = catalog.agents.iter().map(|a| a.name.clone()).collect();
        return Err(ChoiceError::UnknownAgent {
            agent: agent.to_owned(),
            offered: list_or_none(&offered),
        });
    }
    Ok(())
}

/// The model an agent of OpenCode's `GET /agent` answer names for itself, if any.
fn agent_model(agent: &Value) -> Option<String> {
    let m = agent.get("model")?;
    let provider = m.get("providerID")?.as_str()?;
    let model = m.get("modelID")?.as_str()?;
    Some(format!("{provider}/{model}"))
}

/// The model a prompt is sent with. Without a host restriction: the one picked, if any (else
/// OpenCode's choice: the session's or agent's model). With one: always an explicit allowed
/// model — the one picked, else the catalog's (allowed) default — so neither an agent's own
/// model nor a workspace's OpenCode config can run a model the host does not allow.
///
/// # Errors
/// [`ChoiceError::NeedsModel`]: restricted, nothing picked, no allowed default.
pub fn effective_model(
    catalog: &ModelCatalog,
    picked: Option<&str>,
) -> Result<Option<String>, ChoiceError> {
    if catalog.allowed.is_empty() || picked.is_some() {
        return Ok(picked.map(str::to_owned));
    }
    catalog
        .default
        .clone()
        .map(Some)
        .ok_or_else(|| ChoiceError::NeedsModel {
            allowed: catalog.allowed.join(", "),
        })
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_owned()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn providers() -> Value {
        json!({
            "providers": [
                {"id": "mock", "name": "Mock", "models": {
                    "mock-model": {"name": "Mock Model"},
                    "mock-other": {"name": "Other"}
                }},
                {"id": "paid", "name": "Paid", "models": {"big": {}}}
            ],
            "default": {"mock": "mock-model", "paid": "big"}
        })
    }

    fn agents() -> Value {
        json!([
            {"name": "build", "mode": "primary", "description": "builds"},
            {"name": "plan", "mode": "primary"},
            {"name": "general", "mode": "subagent"},
            {"name": "title", "mode": "primary", "hidden": true}
        ])
    }

    #[test]
    fn patterns_match_with_stars() {
        let p = vec!["mock/*".to_owned(), "paid/big".to_owned()];
        assert!(allowed(&p, "mock/anything"));
        assert!(allowed(&p, "paid/big"));
        assert!(!allowed(&p, "paid/bigger"));
        assert!(!allowed(&p, "mockx/m"));
        assert!(allowed(&[], "any/model"));
    }

    #[test]
    fn catalog_lists_offered_models_and_primary_agents_with_the_default_marked() {
        let c = catalog(&providers(), &agents(), &[], None);
        let refs: Vec<String> = c.models.iter().map(ModelChoice::reference).collect();
        assert_eq!(refs, ["mock/mock-model", "mock/mock-other", "paid/big"]);
        assert_eq!(c.default.as_deref(), Some("mock/mock-model"));
        assert!(c.models[0].default && !c.models[1].default);
        let c = catalog(&providers(), &agents(), &[], Some("paid/big"));
        assert_eq!(
            c.default.as_deref(),
            Some("paid/big"),
            "the host's model wins"
        );
        let c = catalog(&providers(), &agents(), &[], None);
        assert_eq!(c.models[2].name, "big");
        let names: Vec<&str> = c.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["build", "plan"]);
    }

    #[test]
    fn catalog_keeps_only_what_the_host_allows() {
        let c = catalog(
            &providers(),
            &agents(),
            &["paid/*".to_owned()],
            Some("mock/mock-model"),
        );
        let refs: Vec<String> = c.models.iter().map(ModelChoice::reference).collect();
        assert_eq!(refs, ["paid/big"]);
        assert_eq!(
            c.default, None,
            "the default is not allowed, so not offered"
        );
    }

    #[test]
    fn an_agent_with_its_own_model_is_offered_only_if_the_host_allows_that_model() {
        let agents = json!([
            {"name": "build", "mode": "primary"},
            {"name": "rich", "mode": "primary", "model": {"providerID": "paid", "modelID": "big"}},
            {"name": "cheap", "mode": "primary", "model": {"providerID": "mock", "modelID": "mock-model"}}
        ]);
        let c = catalog(&providers(), &agents, &["mock/*".to_owned()], None);
        let names: Vec<&str> = c.agents.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["build", "cheap"]);
        let e = check_choice(&c, None, Some("rich")).unwrap_err();
        assert!(matches!(e, ChoiceError::UnknownAgent { .. }), "{e}");
        let open = catalog(&providers(), &agents, &[], None);
        assert_eq!(open.agents.len(), 3);
    }

    #[test]
    fn under_a_restriction_every_prompt_names_an_allowed_model() {
        let restricted = catalog(
            &providers(),
            &agents(),
            &["mock/*".to_owned()],
            Some("mock/mock-model"),
        );
        assert_eq!(
            effective_model(&restricted, None),
            Ok(Some("mock/mock-model".to_owned()))
        );
        assert_eq!(
            effective_model(&restricted, Some("mock/mock-other")),
            Ok(Some("mock/mock-other".to_owned()))
        );
        let no_default = catalog(
            &providers(),
            &agents(),
            &["paid/*".to_owned()],
            Some("mock/mock-model"),
        );
        let e = effective_model(&no_default, None).unwrap_err();
        assert!(matches!(e, ChoiceError::NeedsModel { .. }), "{e}");
        assert!(e.to_string().contains("paid/*"), "{e}");
        let open = catalog(&providers(), &agents(), &[], Some("mock/mock-model"));
        assert_eq!(
            effective_model(&open, None),
            Ok(None),
            "OpenCode keeps choosing"
        );
    }

    #[test]
    fn choices_outside_the_catalog_are_refused_naming_the_allowed_ones() {
        let c = catalog(&providers(), &agents(), &["mock/*".to_owned()], None);
        assert_eq!(
            check_choice(&c, Some("mock/mock-other"), Some("plan")),
            Ok(())
        );
        assert_eq!(check_choice(&c, None, None), Ok(()));
        let e = check_choice(&c, Some("paid/big"), None).unwrap_err();
        assert!(matches!(e, ChoiceError::NotAllowed { .. }), "{e}");
        assert!(e.to_string().contains("mock/*"), "{e}");
        let e = check_choice(&c, Some("mock/nope"), None).unwrap_err();
        assert!(
            e.to_string()
                .contains("pick one of: mock/mock-model, mock/mock-other"),
            "{e}"
        );
        let e = check_choice(&c, None, Some("general")).unwrap_err();
        assert!(e.to_string().contains("pick one of: build, plan"), "{e}");
        let e = check_choice(&c, Some("nomodel"), None).unwrap_err();
        assert!(matches!(e, ChoiceError::Malformed(_)), "{e}");
    }
}
