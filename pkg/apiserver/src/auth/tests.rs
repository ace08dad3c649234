use super::authn::{bearer_token, Union, X509};
use super::*;
use crate::tls::PeerIdentity;

fn union(tokens: &str) -> Box<dyn Authenticator> {
    Box::new(Union::new(vec![
        Box::new(X509),
        Box::new(TokenFile::parse(tokens).unwrap()),
    ]))
}

fn token(t: &str) -> Credentials {
    Credentials {
        peer: None,
        bearer: Some(t.to_string()),
    }
}

#[test]
fn a_token_file_line_names_token_user_uid_and_quoted_groups() {
    let f = TokenFile::parse(
        "s3cret,alice,uid-1,\"system:masters,dev\"\n\
         \n\
         other,bob,2\n\
         t3, carol ,3,ops,ignored-extra-column\n",
    )
    .unwrap();
    assert_eq!(f.len(), 3);
    let alice = f.authenticate(&token("s3cret")).unwrap().unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.uid, "uid-1");
    assert_eq!(alice.groups, vec!["system:masters", "dev"]);
    let bob = f.authenticate(&token("other")).unwrap().unwrap();
    assert!(bob.groups.is_empty());
    // Leading spaces are dropped (as Kubernetes' CSV reader does), trailing ones kept.
    assert_eq!(
        f.authenticate(&token("t3")).unwrap().unwrap().username,
        "carol "
    );
}

#[test]
fn a_token_file_with_too_few_columns_or_a_broken_quote_is_refused_with_its_line() {
    let (line, why) = TokenFile::parse("a,b,c\nonly,two\n").unwrap_err();
    assert_eq!(line, 2);
    assert!(why.contains("at least 3 columns"), "{why}");
    let (line, why) = TokenFile::parse("a,b,c,\"g1,g2\n").unwrap_err();
    assert_eq!(line, 1);
    assert!(why.contains("unterminated"), "{why}");
}

#[test]
fn a_token_file_skips_empty_tokens_and_keeps_the_last_duplicate() {
    let f = TokenFile::parse(",nobody,0\ntok,first,1\ntok,second,2\n").unwrap();
    assert_eq!(f.len(), 1);
    assert_eq!(
        f.authenticate(&token("tok")).unwrap().unwrap().username,
        "second"
    );
}

#[test]
fn a_quoted_field_may_hold_escaped_quotes() {
    let f = TokenFile::parse("\"to\"\"k\",u,1\n").unwrap();
    assert!(f.authenticate(&token("to\"k")).unwrap().is_some());
}

#[test]
fn bearer_tokens_come_only_from_the_bearer_scheme() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("bearer  abc "), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("Bearer "), None);
    assert_eq!(bearer_token("Bearer"), None);
}

#[test]
fn a_client_certificate_authenticates_as_its_cn_and_organizations() {
    let a = union("");
    let creds = Credentials {
        peer: Some(PeerIdentity {
            user: "rkube-admin".into(),
            groups: vec!["system:masters".into()],
        }),
        bearer: None,
    };
    let user = a.authenticate(&creds).unwrap().unwrap();
    assert_eq!(user.username, "rkube-admin");
    assert_eq!(user.groups, vec!["system:masters", "system:authenticated"]);
}

fn pipeline(anonymous: bool, authz: Box<dyn Authorizer>) -> Pipeline {
    Pipeline::new(union("good,svc,7,\"g\"\n"), anonymous, authz)
}

fn list_pods() -> Attributes {
    Attributes::from_http(&http::Method::GET, "/api/v1/namespaces/default/pods", None)
}

#[test]
fn a_request_without_credentials_is_refused_unless_anonymous_requests_are_enabled() {
    let refused = pipeline(false, Box::new(AlwaysAllow))
        .admit(&Credentials::default(), &list_pods())
        .unwrap_err();
    assert!(matches!(refused, Refusal::Unauthenticated(_)));
    let s = refused.status();
    assert_eq!((s.code, s.message.as_str()), (401, "Unauthorized"));

    let user = pipeline(true, Box::new(AlwaysAllow))
        .admit(&Credentials::default(), &list_pods())
        .unwrap();
    assert_eq!(user, UserInfo::anonymous());
}

#[test]
fn a_bad_token_is_refused_even_when_anonymous_requests_are_enabled() {
    let p = pipeline(true, Box::new(AlwaysAllow));
    assert!(matches!(
        p.admit(&token("bad"), &list_pods()),
        Err(Refusal::Unauthenticated(_))
    ));
    let user = p.admit(&token("good"), &list_pods()).unwrap();
    assert_eq!(user.username, "svc");
    assert_eq!(user.groups, vec!["g", "system:authenticated"]);
}

struct DenyAll;
impl Authorizer for DenyAll {
    fn authorize(&self, _: &UserInfo, _: &Attributes) -> Decision {
        Decision::Deny("not today".into())
    }
}

#[test]
fn a_denied_request_gets_kubernetes_forbidden_message() {
    let refused = pipeline(false, Box::new(DenyAll))
        .admit(&token("good"), &list_pods())
        .unwrap_err();
    let s = refused.status();
    assert_eq!(s.code, 403);
    assert_eq!(
        s.message,
        "pods is forbidden: User \"svc\" cannot list resource \"pods\" in API group \"\" \
         in the namespace \"default\": not today"
    );
    assert_eq!(refused.grpc_status().code(), tonic::Code::PermissionDenied);
}

/// method, path, query → verb, group, namespace, resource, name, subresource.
type Case = (
    http::Method,
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

#[test]
fn request_attributes_follow_kubernetes_request_info() {
    use http::Method as M;
    #[rustfmt::skip]
    let cases: &[Case] = &[
        (M::GET, "/api/v1/namespaces/ns/pods", None, "list", "", "ns", "pods", "", ""),
        (M::GET, "/api/v1/namespaces/ns/pods", Some("watch=true&resourceVersion=5"), "watch", "", "ns", "pods", "", ""),
        (M::GET, "/api/v1/watch/namespaces/ns/pods/p", None, "watch", "", "ns", "pods", "p", ""),
        (M::GET, "/api/v1/namespaces/ns/pods/p", None, "get", "", "ns", "pods", "p", ""),
        (M::PUT, "/api/v1/namespaces/ns/pods/p/status", None, "update", "", "ns", "pods", "p", "status"),
        (M::POST, "/apis/apps/v1/namespaces/ns/deployments", None, "create", "apps", "ns", "deployments", "", ""),
        (M::PATCH, "/apis/apps/v1/namespaces/ns/deployments/d", None, "patch", "apps", "ns", "deployments", "d", ""),
        (M::DELETE, "/api/v1/namespaces/ns/configmaps", None, "deletecollection", "", "ns", "configmaps", "", ""),
        (M::DELETE, "/api/v1/namespaces/ns", None, "delete", "", "ns", "namespaces", "ns", ""),
        (M::GET, "/api/v1/namespaces", None, "list", "", "", "namespaces", "", ""),
        (M::GET, "/api/v1/nodes/n1", None, "get", "", "", "nodes", "n1", ""),
    ];
    for (m, path, q, verb, group, ns, resource, name, sub) in cases {
        let a = Attributes::from_http(m, path, *q);
        assert!(a.resource_request, "{path}");
        assert_eq!(
            (
                a.verb.as_str(),
                a.api_group.as_str(),
                a.namespace.as_str(),
                a.resource.as_str(),
                a.name.as_str(),
                a.subresource.as_str()
            ),
            (*verb, *group, *ns, *resource, *name, *sub),
            "{m} {path}"
        );
    }
    for path in [
        "/api",
        "/api/v1",
        "/apis/apps/v1",
        "/openapi/v2",
        "/metrics",
    ] {
        let a = Attributes::from_http(&M::GET, path, None);
        assert!(!a.resource_request, "{path}");
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", path));
    }
}

mod http_layer {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    fn app(anonymous: bool) -> axum::Router {
        let p = Arc::new(pipeline(anonymous, Box::new(AlwaysAllow)));
        axum::Router::new()
            .route("/readyz", axum::routing::get(|| async { "ok" }))
            .route(
                "/api/v1/namespaces",
                axum::routing::get(|| async { "list" }),
            )
            .merge(whoami_router())
            .layer(axum::middleware::from_fn_with_state(p, layer))
    }

    async fn call(app: axum::Router, req: http::Request<Body>) -> (u16, serde_json::Value) {
        let r = app.oneshot(req).await.unwrap();
        let code = r.status().as_u16();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (
            code,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    fn get(path: &str) -> http::request::Builder {
        http::Request::get(path)
    }

    #[tokio::test]
    async fn health_paths_are_open_and_resources_need_credentials() {
        let (code, _) = call(app(false), get("/readyz").body(Body::empty()).unwrap()).await;
        assert_eq!(code, 200);
        let (code, body) = call(
            app(false),
            get("/api/v1/namespaces").body(Body::empty()).unwrap(),
        )
        .await;
        assert_eq!(code, 401);
        assert_eq!(body["kind"], "Status");
        assert_eq!(body["reason"], "Unauthorized");
        let (code, _) = call(
            app(false),
            get("/api/v1/namespaces")
                .header("authorization", "Bearer good")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(code, 200);
        // Unknown paths are not a way around authentication either.
        let (code, _) = call(app(false), get("/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(code, 401);
    }

    #[tokio::test]
    async fn grpc_calls_without_credentials_get_unauthenticated() {
        let r = app(false)
            .oneshot(
                http::Request::post("/rkube.store.v1.KV/Range")
                    .header("content-type", "application/grpc")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(r.headers()["grpc-status"], "16");
    }

    #[tokio::test]
    async fn whoami_reports_the_authenticated_user() {
        let (code, body) = call(
            app(false),
            http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
                .header("authorization", "Bearer good")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
        assert_eq!(code, 201);
        assert_eq!(body["kind"], "SelfSubjectReview");
        assert_eq!(body["status"]["userInfo"]["username"], "svc");
        assert_eq!(body["status"]["userInfo"]["uid"], "7");
        assert_eq!(
            body["status"]["userInfo"]["groups"],
            serde_json::json!(["g", "system:authenticated"])
        );
    }
}
