//! Network stand-ins for what the local servers cannot do: a proxy that can cut the line to
//! them (an outage), and a tiny HTTP server with canned answers (throttling, partial failures).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy to `target` on a loopback port. While down, it refuses new connections and
/// has cut the open ones.
pub struct Proxy {
    pub url: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(target: &str, up: bool) -> Proxy {
        let target = target.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(up));
        let open: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (flag, tasks) = (up.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                tasks.lock().unwrap().push(task);
            }
        });
        Proxy { url, up, open }
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for task in self.open.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
}

/// One HTTP request as the fake server saw it.
pub struct Request {
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTP/1.1 server on a loopback port answering each request with `answer(request)`:
/// (status line, content type, body).
pub async fn fake_http(
    answer: impl Fn(&Request) -> (String, String, Vec<u8>) + Send + Sync + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = socket.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&seen[..end]).to_string();
                        let length: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().to_owned())
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        if seen.len() < end + 4 + length {
                            break;
                        }
                        let body = seen[end + 4..end + 4 + length].to_vec();
                        seen.drain(..end + 4 + length);
                        let (status, content_type, reply) = answer(&Request { head, body });
                        let mut response =
                            format!("HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n", reply.len())
                                .into_bytes();
                        response.extend_from_slice(&reply);
                        if socket.write_all(&response).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// An HTTP proxy to a local AWS-compatible server that tells the services apart by their
/// `X-Amz-Target` header, so one can fail while the other works: Kinesis can be cut off
/// (its calls are held without an answer, as over a dead link, until the caller gives up),
/// and DynamoDB slowed down (each call waits before it is passed on).
pub struct FaultProxy {
    pub url: String,
    kinesis_down: Arc<AtomicBool>,
    dynamo_delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Clone)]
struct FaultState {
    target: String,
    client: reqwest::Client,
    kinesis_down: Arc<AtomicBool>,
    dynamo_delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl FaultProxy {
    pub async fn start(target: &str) -> FaultProxy {
        let state = FaultState {
            target: target.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            kinesis_down: Arc::default(),
            dynamo_delay_ms: Arc::default(),
        };
        let proxy = FaultProxy {
            url: String::new(),
            kinesis_down: state.kinesis_down.clone(),
            dynamo_delay_ms: state.dynamo_delay_ms.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        FaultProxy { url, ..proxy }
    }

    /// Cuts Kinesis off (`true`) or restores it.
    pub fn set_kinesis_down(&self, down: bool) {
        self.kinesis_down.store(down, Ordering::SeqCst);
    }

    /// Holds every DynamoDB call this long before passing it on (zero: no delay).
    pub fn set_dynamo_delay(&self, delay: std::time::Duration) {
        self.dynamo_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

async fn forward(
    axum::extract::State(s): axum::extract::State<FaultState>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = request.into_parts();
    let service = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if service.starts_with("Kinesis") && s.kinesis_down.load(Ordering::SeqCst) {
        // A dead link: no answer until the caller times out and drops the connection.
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        return axum::http::StatusCode::GATEWAY_TIMEOUT.into_response();
    }
    if service.starts_with("DynamoDB") {
        let delay = s.dynamo_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        }
    }
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return axum::http::StatusCode::BAD_REQUEST.into_response();
    };
    let uri = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = s
        .client
        .request(parts.method, format!("{}{uri}", s.target))
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            out = out.header(name, value);
        }
    }
    match out.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (name, value) in &headers {
                if name != "content-length" && name != "transfer-encoding" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(_) => axum::http::StatusCode::BAD_GATEWAY.into_response(),
    }
}
