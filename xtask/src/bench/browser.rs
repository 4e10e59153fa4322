//! One headless Chromium session through chromedriver, for the page section: WebDriver by
//! `fantoccini`, plus the one chromedriver extension the section needs (Chrome DevTools
//! Protocol commands through `goog/cdp/execute`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::wd::{TimeoutConfiguration, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::tools;

/// A fresh headless Chromium (1280×800), recording Chromium's trace into chromedriver's
/// performance log if asked ([`Session::trace_events`]); [`Session::close`] ends it.
pub struct Session {
    client: Client,
}

impl Session {
    /// Opens a session on the chromedriver listening on `driver` (loopback); with `traced`,
    /// Chromium's `devtools.timeline` trace is recorded for [`Session::trace_events`] (which
    /// costs the page some time per event, so only the sessions that read it record it).
    pub async fn open(driver: u16, traced: bool) -> Result<Session> {
        let mut caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools::CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,800"],
            },
        });
        if traced {
            caps["goog:chromeOptions"]["perfLoggingPrefs"] = json!({
                "enableNetwork": false,
                "enablePage": false,
                "traceCategories": "devtools.timeline,disabled-by-default-devtools.timeline",
            });
            caps["goog:loggingPrefs"] = json!({ "performance": "ALL" });
        }
        let Value::Object(caps) = caps else {
            bail!("capabilities are not a JSON object");
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{driver}"))
            .await
            .context("chromedriver opened no headless Chromium session")?;
        let timeouts = TimeoutConfiguration::new(
            Some(Duration::from_secs(60)),
            Some(Duration::from_secs(30)),
            None,
        );
        let session = Session { client };
        if let Err(err) = session.client.update_timeouts(timeouts).await {
            session.close().await;
            bail!("chromedriver: setting the timeouts: {err}");
        }
        Ok(session)
    }

    /// Navigates to `url` and waits for its load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.client
            .goto(url)
            .await
            .with_context(|| format!("chromedriver: opening {url}"))
    }

    /// Runs an async script (it ends by calling its last argument) and returns its value.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.client
            .execute_async(script, args)
            .await
            .context("chromedriver: an async script failed")
    }

    /// One Chrome DevTools Protocol command.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        let body = json!({ "cmd": cmd, "params": params });
        self.client
            .issue_cmd(Chromedriver {
                path: "goog/cdp/execute",
                body,
            })
            .await
            .with_context(|| format!("chromedriver: CDP {cmd}"))
    }

    /// `Performance.getMetrics` as name → value (durations in seconds).
    pub async fn metrics(&self) -> Result<HashMap<String, f64>> {
        let v = self.cdp("Performance.getMetrics", json!({})).await?;
        Ok(v["metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| Some((m["name"].as_str()?.to_owned(), m["value"].as_f64()?)))
            .collect())
    }

    /// The trace events recorded so far (chromedriver's performance log keeps each as a
    /// `Tracing.dataCollected` entry; it hands the trace over once, so call this once).
    pub async fn trace_events(&self) -> Result<Vec<Value>> {
        let log = self
            .client
            .issue_cmd(Chromedriver {
                path: "se/log",
                body: json!({ "type": "performance" }),
            })
            .await
            .context("chromedriver: reading the performance log")?;
        Ok(log
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| serde_json::from_str::<Value>(entry["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Tracing.dataCollected")
            .map(|mut m| m["message"]["params"].take())
            .collect())
    }

    /// Ends the session (and its Chromium); a failure to end it is only reported.
    pub async fn close(self) {
        if let Err(err) = self.client.close().await {
            println!("bench: closing the Chromium session: {err}");
        }
    }
}

/// One of chromedriver's own `POST /session/{id}/PATH` commands with a JSON body:
/// `goog/cdp/execute` (`{cmd, params}`) and `se/log` (`{type}`: one log's new entries).
#[derive(Debug)]
struct Chromedriver {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Chromedriver {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/{}", self.path))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}
