//! The HTTP edge: every request on every core enters here (`handle_http`).
//!
//! It owns what is HTTP rather than Kinesis: `GET /health` and `GET /metrics`, the refusal of
//! CBOR bodies, the request body limit and stall timeout, parsing the body once into a typed
//! `spate_proto::Request`, the per-operation request metric (labelled with the typed error's
//! kind), and turning an answer into a response (JSON, or an event stream for
//! SubscribeToShard). What an operation does is `api::dispatch`'s business. TLS and
//! authentication, when they come, belong here.

use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use spate_proto::responses::CONTENT_TYPE;
use spate_proto::{ApiError, parse_request};

use crate::api::{self, Reply};
use crate::core::Core;
use crate::http::{Body, BodyError, full, read_body_limited};

/// Largest request body accepted: a PutRecords of 500 records of up to 1 MiB each is capped at
/// 5 MiB of payload by Kinesis; base64 and JSON overhead stay well within this.
pub const REQUEST_BODY_BYTES_MAX: usize = 16 << 20;

/// Entry point for every HTTP request on every core.
pub async fn handle_http(core: Rc<Core>, request: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let request_id = core.request_id();
    let path = request.uri().path().to_string();
    match (request.method(), path.as_str()) {
        (&Method::GET, "/health") | (&Method::GET, "/healthz") => {
            return plain(StatusCode::OK, "text/plain", "ok\n".into(), &request_id);
        }
        (&Method::GET, "/metrics") => {
            let text = core.scrape().await;
            return plain(StatusCode::OK, "text/plain; version=0.0.4", text.into(), &request_id);
        }
        (&Method::POST, _) => {}
        _ => {
            let error = ApiError::new(
                spate_proto::ErrorKind::UnknownOperationException,
                "Spate serves the Kinesis API with POST /, GET /health and GET /metrics.",
            );
            return json(404, error.to_json(), &request_id);
        }
    }
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(spate_proto::operation_from_target)
        .unwrap_or("")
        .to_string();
    // The AWS SDKs for Java (and so the KCL) send CBOR to Kinesis unless told not to. Spate
    // speaks AWS JSON 1.1 only; say so instead of failing to parse the body as JSON.
    let content_type = request.headers().get("content-type").and_then(|v| v.to_str().ok());
    if content_type.is_some_and(|t| t.starts_with("application/x-amz-cbor")) {
        let error = ApiError::serialization(
            "Spate speaks AWS JSON 1.1 (application/x-amz-json-1.1), not CBOR. Disable CBOR in \
             the client: AWS_CBOR_DISABLE=true in the environment or -Daws.cborEnabled=false \
             for the AWS SDK for Java and the KCL.",
        );
        core.metrics().request(metric_operation(&operation), error.type_name(), 0.0);
        return json(400, error.to_json(), &request_id);
    }
    let body = read_body_limited(
        request.into_body(),
        REQUEST_BODY_BYTES_MAX,
        crate::http::BODY_STALL_TIMEOUT,
    );
    let body = match body.await {
        Ok(body) => body,
        Err(BodyError::TooLarge { .. }) => {
            let error = ApiError::validation(format!(
                "1 validation error detected: Request body exceeds the limit of \
                 {REQUEST_BODY_BYTES_MAX} bytes"
            ));
            core.metrics().request(metric_operation(&operation), error.type_name(), 0.0);
            return json(413, error.to_json(), &request_id);
        }
        Err(BodyError::Read(_)) => {
            let error = ApiError::serialization("Could not read the request body");
            return json(400, error.to_json(), &request_id);
        }
        Err(BodyError::Stalled) => {
            let error = ApiError::serialization(format!(
                "No part of the request body arrived for {} seconds",
                crate::http::BODY_STALL_TIMEOUT.as_secs()
            ));
            core.metrics().request(metric_operation(&operation), error.type_name(), 0.0);
            return json(408, error.to_json(), &request_id);
        }
    };
    // Parsed once, here: everything after this works on the typed request.
    let result = match parse_request(&operation, &body) {
        Ok(request) => api::dispatch(&core, request).await,
        Err(error) => Err(error),
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(error) => error.type_name(),
    };
    core.metrics().request(metric_operation(&operation), outcome, started.elapsed().as_secs_f64());
    match result {
        Ok(Reply::Json(payload)) => json(200, payload, &request_id),
        Ok(Reply::Events(events)) => Response::builder()
            .status(200)
            .header("content-type", spate_proto::eventstream::CONTENT_TYPE)
            .header("x-amzn-RequestId", &request_id)
            .body(crate::http::stream_body_until(events, core.shutdown()))
            .expect("valid response"),
        Err(error) => json(error.status(), error.to_json(), &request_id),
    }
}

fn metric_operation(operation: &str) -> &str {
    if spate_proto::requests::Operation::from_name(operation).is_some() {
        operation
    } else {
        "unknown"
    }
}

fn plain(status: StatusCode, content_type: &str, body: Bytes, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-RequestId", request_id)
        .body(full(body))
        .expect("valid response")
}

pub fn json(status: u16, body: Vec<u8>, request_id: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", CONTENT_TYPE)
        .header("x-amzn-RequestId", request_id)
        .body(full(body))
        .expect("valid response")
}
