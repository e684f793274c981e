//! Logging and tracing. `RUST_LOG` decides what is logged (by default info, with sqlx's
//! per-statement lines kept quiet); `LOG_FORMAT` how: text for people, or one JSON object per line
//! for log shippers. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, spans (the request, its use case and
//! the services under it) are also exported to that collector over OTLP/HTTP.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, ObservabilitySettings};

pub const DEFAULT_FILTER: &str = "info,sqlx=warn,sea_orm=warn";

/// Ends trace export when dropped, sending what is still buffered.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Sends the spans still buffered and stops the exporter; blocks until it has.
    pub fn shutdown(mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("trace export did not shut down cleanly: {e}");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Logging with the defaults (text, no export): for tests and tools.
pub fn init() {
    let _ = try_init(&ObservabilitySettings {
        metrics_enabled: true,
        metrics_port: None,
        log_format: LogFormat::Text,
        otlp_endpoint: None,
    });
}

/// Sets up logging and, if configured, trace export. A second call (tests) changes nothing.
/// Needs a Tokio runtime when an OTLP endpoint is set (the exporter sends on it).
pub fn try_init(settings: &ObservabilitySettings) -> Result<TelemetryGuard, String> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let provider = match &settings.otlp_endpoint {
        Some(endpoint) => Some(otlp_provider(endpoint)?),
        None => None,
    };
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("loyalty-api"))
            .with_error_records_to_exceptions(true)
    });
    let (text, json) = match settings.log_format {
        LogFormat::Text => (Some(tracing_subscriber::fmt::layer()), None),
        LogFormat::Json => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    // Every span the line is in, with its fields: the request's id and member
                    // are on the request's span.
                    .with_span_list(true),
            ),
        ),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(otel)
        .try_init();
    Ok(TelemetryGuard { provider })
}

fn otlp_provider(endpoint: &str) -> Result<SdkTracerProvider, String> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| "OTEL_EXPORTER_OTLP_ENDPOINT: trace export needs a Tokio runtime")?;
    let client = OtlpClient {
        client: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?,
        runtime,
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("loyalty-api")
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The OTLP exporter's HTTP client: the server's own reqwest, run on the process's runtime (the
/// exporter sends from a thread of its own, outside any runtime).
#[derive(Debug)]
struct OtlpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let client = self.client.clone();
        // Built and sent on the runtime: reqwest needs its reactor even to start a request.
        let (status, headers, body) = self
            .runtime
            .spawn(async move {
                let response = client
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await?;
                let (status, headers) = (response.status(), response.headers().clone());
                Ok::<_, reqwest::Error>((status, headers, response.bytes().await?))
            })
            .await??;
        let mut response = http::Response::builder().status(status).body(body)?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
