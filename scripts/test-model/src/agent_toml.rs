//! The `[opencode]` part of an `agent.toml` whose OpenCode talks to this test model: one place
//! for the tests of every crate that start a real agent.

/// `[opencode]` with `model`/`small_model` = `mock/mock-model`, `extra` (more `[opencode]`
/// keys, one per line, or empty), and the `mock` provider pointing at `base_url` (e.g.
/// [`crate::TestModel::base_url`]).
pub fn opencode_toml(base_url: &str, extra: &str) -> String {
    format!(
        r#"
[opencode]
model = "mock/mock-model"
small_model = "mock/mock-model"
{extra}

[opencode.provider.mock]
npm = "@ai-sdk/openai-compatible"
name = "Mock LLM"

[opencode.provider.mock.options]
baseURL = "{base_url}"
apiKey = "mock-key"

[opencode.provider.mock.models.mock-model]
name = "Mock Model"
tool_call = true

[opencode.provider.mock.models.mock-model.limit]
context = 128000
output = 4096
"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_block_is_toml_with_the_provider_and_the_extra_keys() {
        let text = super::opencode_toml("http://127.0.0.1:9/v1", "default_agent = \"plan\"");
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(v["opencode"]["default_agent"].as_str(), Some("plan"));
        assert_eq!(
            v["opencode"]["provider"]["mock"]["options"]["baseURL"].as_str(),
            Some("http://127.0.0.1:9/v1")
        );
    }
}
