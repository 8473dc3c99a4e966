//! A small blocking client for the IronVS REST API.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A connection to the API at a base URL.
pub struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:9180`).
    pub fn new(base: &str, token: Option<String>) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(30))
                .build(),
        }
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        self.request_status(method, path, body).map_err(|(_, m)| m)
    }

    /// Like [`Client::send`], but a refusal also carries its HTTP status (`None`: unreachable).
    pub fn request_status(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, (Option<u16>, String)> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.request(method, &url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let resp = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match resp {
            Ok(r) if r.status() == 204 => Ok(None),
            Ok(r) => r
                .into_json::<Value>()
                .map(Some)
                .map_err(|e| (None, format!("bad response from {url}: {e}"))),
            Err(ureq::Error::Status(code, r)) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                let detail = v["detail"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("HTTP {code}"));
                Err((Some(code), detail))
            }
            Err(ureq::Error::Transport(t)) => Err((
                None,
                format!(
                    "cannot reach the IronVS API at {}: {}",
                    self.base,
                    t.message()
                        .map(str::to_string)
                        .unwrap_or_else(|| t.kind().to_string())
                ),
            )),
        }
    }

    /// GET, decoded.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let v = self.request("GET", path, None)?.unwrap_or(Value::Null);
        serde_json::from_value(v).map_err(|e| format!("unexpected response to GET {path}: {e}"))
    }

    /// A request that changes state; the response body is returned if any.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, String> {
        self.request(method, path, body)
    }
}
