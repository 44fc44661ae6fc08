//! Events: what the reconcilers tell people about the objects they act on.

use kube::runtime::events::Recorder;

/// The longest note the API server stores in an Event (bytes); a longer one refuses the Event.
pub const EVENT_NOTE_BYTES: usize = 1024;

/// Publishes an Event about `reference`; a failure is logged, never fatal to a reconcile. A
/// note longer than the API server takes (a policy's message naming many SLOs) is cut short,
/// an ellipsis marking the cut, rather than lose the Event.
pub async fn publish(
    recorder: &Recorder,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: kube::runtime::events::EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = kube::runtime::events::Event {
        type_,
        reason: reason.into(),
        note: Some(crate::api::bounds::cut_bytes(&note, EVENT_NOTE_BYTES)),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "cannot publish event");
    }
}
