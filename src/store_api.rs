//! SPEC §9.6 on the admin listener: `GET /store`, `POST /store/<id>/retry`,
//! `DELETE /store/<id>`, authorised by `Authorization: Bearer <admin.token>` (compared in
//! constant time). Without a token configured, or without a store, these paths are 404.

use bytes::Bytes;
use http::{header, HeaderMap, Method, Response, StatusCode};
use http_body_util::Full;

use crate::store::{Changed, ListQuery};
use crate::Gate;

/// The most rows one `GET /store` returns; `limit` defaults to 100.
const MAX_LIMIT: usize = 10_000;

/// `Some(response)` when `path` is the store API's; `None` for every other path.
pub(crate) async fn answer(
    gate: &Gate,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response<Full<Bytes>>> {
    let rest = path.strip_prefix("/store")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let snap = gate.snapshot();
    let (Some(token), Some(store)) = (&snap.admin_token, &gate.store) else {
        return Some(json(
            StatusCode::NOT_FOUND,
            r#"{"error":"not_found"}"#.into(),
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if !crate::secret::matches_any(std::slice::from_ref(token), given) {
        let mut resp = json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"unauthorized"}"#.into(),
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return Some(resp);
    }
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (method, segments.as_slice()) {
        (&Method::GET, []) => match list_query(query) {
            Ok(q) => store.list(q).await.map(|rows| {
                json(
                    StatusCode::OK,
                    serde_json::to_string(&rows).unwrap_or_else(|_| "[]".into()),
                )
            }),
            Err(why) => Ok(error(StatusCode::BAD_REQUEST, &why)),
        },
        (&Method::POST, [id, "retry"]) => store.retry(id).await.map(|c| changed(c, id)),
        (&Method::DELETE, [id]) => store.delete(id).await.map(|c| changed(c, id)),
        _ => Ok(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "not a store API call",
        )),
    };
    Some(result.unwrap_or_else(|e| error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string())))
}

fn list_query(query: Option<&str>) -> Result<ListQuery, String> {
    let mut q = ListQuery {
        limit: 100,
        ..ListQuery::default()
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "state" if matches!(v, "pending" | "dead" | "delivered") => q.state = Some(v.into()),
            "state" => return Err(format!("state {v:?} is not pending, dead or delivered")),
            "route" => q.route = Some(v.into()),
            "limit" => {
                q.limit = v
                    .parse::<usize>()
                    .map_err(|_| format!("limit {v:?} is not a number"))?
                    .min(MAX_LIMIT)
            }
            _ => return Err(format!("unknown parameter {k:?}")),
        }
    }
    Ok(q)
}

fn changed(c: Changed, id: &str) -> Response<Full<Bytes>> {
    match c {
        Changed::Done => json(
            StatusCode::OK,
            serde_json::json!({ "request_id": id }).to_string(),
        ),
        Changed::NotFound => error(StatusCode::NOT_FOUND, "no such request"),
        Changed::Pending => error(StatusCode::CONFLICT, "the request is still pending"),
    }
}

fn error(status: StatusCode, why: &str) -> Response<Full<Bytes>> {
    json(status, serde_json::json!({ "error": why }).to_string())
}

fn json(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}
