//! `{env:NAME}` references in OpenCode's config strings (its substitution syntax), on their own
//! so that both the provider checks (`opencode/provider.rs`) and the sandbox's environment
//! allow-list (`sandbox/plan.rs`) can find them without reaching into each other. Pure.

use serde_json::Value;

/// `{env:NAME}` references in a string (OpenCode's substitution syntax).
pub fn env_refs(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find("{env:") {
        let after = &rest[start + 5..];
        let Some(end) = after.find('}') else { break };
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

/// Every `{env:NAME}` in the strings of a provider's table.
pub fn env_refs_in(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => env_refs(s),
        Value::Array(a) => a.iter().flat_map(env_refs_in).collect(),
        Value::Object(o) => o.values().flat_map(env_refs_in).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn env_references_are_found_anywhere_in_a_table() {
        let v = json!({"options": {"apiKey": "{env:KEY_A}", "headers": ["x-{env:B}-{env:C}"]}});
        let mut refs = env_refs_in(&v);
        refs.sort();
        assert_eq!(refs, ["B", "C", "KEY_A"]);
        assert!(env_refs("{env:unterminated").is_empty());
    }
}
