//! The `tracing.k8s.io/traceparent` annotation: how a pod's asynchronous journey stays one
//! trace. The apiserver stamps a new pod with its creating request's trace context; each
//! component that acts on the object continues that trace ([`continue_trace`]), and a
//! component that creates objects on another's behalf (a ReplicaSet's pods) passes it on
//! ([`annotate`]).
//!
//! Without an OpenTelemetry layer installed these are no-ops: nothing is read or written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_telemetry::propagation::{
    context_from_traceparent, current_traceparent, Context, OpenTelemetrySpanExt,
    TRACEPARENT_ANNOTATION,
};
use tracing::Span;

/// The object's `traceparent` annotation, if it carries one.
pub fn traceparent(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(TRACEPARENT_ANNOTATION)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// The trace context the object carries (empty when it carries none or a malformed one).
pub fn context_of(meta: &ObjectMeta) -> Context {
    traceparent(meta).map_or_else(Context::new, context_from_traceparent)
}

/// Makes `span` a child of the trace the object carries. Returns whether it did.
pub fn continue_trace(span: &Span, meta: &ObjectMeta) -> bool {
    match traceparent(meta) {
        Some(tp) => span.set_parent(context_from_traceparent(tp)).is_ok(),
        None => false,
    }
}

/// Writes the current span's trace context into `meta`'s annotations, so whoever acts on
/// the object next continues this trace. Keeps an existing value (the trace an object was
/// created in stays its trace). Returns whether it wrote one.
pub fn annotate(meta: &mut ObjectMeta) -> bool {
    if traceparent(meta).is_some() {
        return false;
    }
    match current_traceparent() {
        Some(tp) => {
            meta.annotations
                .get_or_insert_with(Default::default)
                .insert(TRACEPARENT_ANNOTATION.to_string(), tp);
            true
        }
        None => false,
    }
}

/// Copies `from`'s trace annotation to `to` (when `to` has none): for objects made from a
/// template of an object that carries a trace.
pub fn inherit(from: &ObjectMeta, to: &mut ObjectMeta) {
    if let (Some(tp), None) = (traceparent(from), traceparent(to)) {
        to.annotations
            .get_or_insert_with(Default::default)
            .insert(TRACEPARENT_ANNOTATION.to_string(), tp.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    fn with(tp: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            annotations: tp.map(|t| [(TRACEPARENT_ANNOTATION.to_string(), t.to_string())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_annotation_is_read_only_when_present_and_non_empty() {
        assert_eq!(traceparent(&with(Some(TP))), Some(TP));
        assert_eq!(traceparent(&with(Some(""))), None);
        assert_eq!(traceparent(&with(None)), None);
    }

    #[test]
    fn a_carried_context_names_its_trace() {
        use opentelemetry::trace::TraceContextExt as _;
        let cx = context_of(&with(Some(TP)));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "0af7651916cd43dd8448eb211c80319c"
        );
        assert!(!context_of(&with(None)).span().span_context().is_valid());
    }

    #[test]
    fn inherit_copies_a_trace_but_never_replaces_one() {
        let mut to = with(None);
        inherit(&with(Some(TP)), &mut to);
        assert_eq!(traceparent(&to), Some(TP));
        let other = "00-11111111111111111111111111111111-2222222222222222-01";
        inherit(&with(Some(other)), &mut to);
        assert_eq!(traceparent(&to), Some(TP));
    }

    #[test]
    fn annotate_without_an_exported_trace_writes_nothing() {
        let mut m = with(None);
        assert!(!annotate(&mut m));
        assert!(m.annotations.is_none());
    }
}
