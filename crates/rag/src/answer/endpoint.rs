//! The chat-completions URL of an OpenAI-compatible API root, and how it is shown.

use crate::error::{RagError, Result};

/// A chat-completions endpoint: where requests go, and how errors, logs and
/// descriptions show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// The full URL, secrets included (user and password go out as basic auth).
    pub(crate) url: String,
    /// The URL with its userinfo and query values hidden
    /// ([`ragchat_redact::redact_url`]).
    pub(crate) shown: String,
}

impl Endpoint {
    /// The endpoint of the API root `base`: `/chat/completions` appended to its path
    /// (unless the path already ends so), its query kept and its fragment dropped, so
    /// `https://h/v1?api-version=X` gives `https://h/v1/chat/completions?api-version=X`.
    ///
    /// # Errors
    /// [`RagError::InvalidInput`] when `base` is not an http(s) URL; the message shows
    /// it redacted.
    pub(crate) fn for_base(base: &str) -> Result<Endpoint> {
        let base = base.trim();
        let shown_base = ragchat_redact::redact_url(base);
        let mut url = reqwest::Url::parse(base)
            .map_err(|e| RagError::InvalidInput(format!("LLM base URL {shown_base:?}: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(RagError::InvalidInput(format!(
                "LLM base URL {shown_base:?} must start with http:// or https://"
            )));
        }
        url.set_fragment(None);
        let path = url.path().trim_end_matches('/').to_owned();
        if path.ends_with("/chat/completions") {
            url.set_path(&path);
        } else {
            url.set_path(&format!("{path}/chat/completions"));
        }
        let url = String::from(url);
        let shown = ragchat_redact::redact_url(&url);
        Ok(Endpoint { url, shown })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_gets_chat_completions_and_the_query_stays() {
        let endpoint = Endpoint::for_base(
            "https://u:p4ss@llm.example/openai/v1?api-version=2024-06-01&token=s3cret",
        )
        .expect("valid");
        assert_eq!(
            endpoint.url,
            "https://u:p4ss@llm.example/openai/v1/chat/completions?api-version=2024-06-01&token=s3cret"
        );
        assert_eq!(
            endpoint.shown,
            "https://***@llm.example/openai/v1/chat/completions?api-version=2024-06-01&token=***"
        );
        let url = |base: &str| Endpoint::for_base(base).expect("valid").url;
        assert_eq!(
            url("http://h/v1/chat/completions/?x=1"),
            "http://h/v1/chat/completions?x=1"
        );
        assert_eq!(
            url("http://localhost:11434/v1/"),
            "http://localhost:11434/v1/chat/completions"
        );
        assert_eq!(url("http://h"), "http://h/chat/completions");
        assert_eq!(url("http://h/v1#frag"), "http://h/v1/chat/completions");
    }

    #[test]
    fn a_refused_url_is_named_without_its_secrets() {
        for base in [
            "ftp://u:p4ss@h/?token=s3cret",
            "http://u:p4ss@[::1/?token=s3cret",
        ] {
            let err = Endpoint::for_base(base).expect_err("refused").to_string();
            assert!(!err.contains("p4ss") && !err.contains("s3cret"), "{err}");
        }
    }
}
