//! The WebSocket API's routes: `$connect` (accepted: the key comes in the first message, never
//! in the URL), `subscribe` (and `$default`, which answers what was wrong) and `$disconnect`.
//! Every answer is a frame posted to the connection, as pushes are: API Gateway sends a
//! route's response body only where a route response is configured.

use aws::connections::{Connections, PostError};
use domain::live::{Outgoing, Refusal, Subscribe, parse_message};
use domain::time::now_millis;
use store::{KeyStore, Lookup, Refused, Subscriptions};

use crate::{Live, RouteRequest, RouteResponse};

const OK: RouteResponse = RouteResponse { status_code: 200 };

impl<S, C> Live<S, C>
where
    S: KeyStore + Subscriptions + Lookup,
    C: Connections,
{
    pub(crate) async fn route(&self, request: &RouteRequest) -> RouteResponse {
        let connection = request.request_context.connection_id.as_str();
        match request.request_context.route_key.as_str() {
            "$connect" => OK,
            "$disconnect" => {
                match self.store.disconnect(connection).await {
                    Ok(dropped) => tracing::debug!(dropped, "connection closed"),
                    // Its subscriptions expire with their TTL, and a push to it drops them.
                    Err(err) => tracing::warn!(error = %err, "a closed connection's subscriptions were not dropped"),
                }
                OK
            }
            _ => {
                let reply = match parse_message(request.body.as_deref().unwrap_or_default()) {
                    Ok(subscribe) => self.subscribe(connection, &subscribe).await,
                    Err(refusal) => Err(refusal),
                };
                let frame = match &reply {
                    Ok(label) => Outgoing::Subscribed { batch_job_id: label }.to_bytes(),
                    Err(refusal) => Outgoing::from(refusal).to_bytes(),
                };
                match self.connections.send_frame(connection, frame).await {
                    Ok(()) | Err(PostError::Gone) => {}
                    Err(err) => tracing::warn!(error = %err, "a subscription's answer was not delivered"),
                }
                OK
            }
        }
    }

    /// Checks the key as the HTTP API does and records the subscription: what it follows, as
    /// the client named it, or why not.
    async fn subscribe(&self, connection: &str, subscribe: &Subscribe) -> Result<String, Refusal> {
        let tenant = match self.store.tenant_for_key(&subscribe.api_key).await {
            Ok(Some(tenant)) => tenant,
            Ok(None) => return Err(Refusal::unauthorized()),
            Err(err) => {
                tracing::error!(error = %err, "the key could not be checked");
                return Err(Refusal::internal());
            }
        };
        let label = subscribe.watch.label().to_owned();
        match self.store.subscribe(connection, &tenant, &subscribe.watch, now_millis()).await {
            Ok(Ok(())) => {
                tracing::info!(tenant = %tenant.0, watch = %label, "subscribed");
                Ok(label)
            }
            Ok(Err(Refused::NotFound)) => Err(Refusal::not_found(&label)),
            Ok(Err(Refused::TooMany)) => Err(Refusal::too_many(&subscribe.watch)),
            Err(err) => {
                tracing::error!(error = %err, "a subscription was not recorded");
                Err(Refusal::internal())
            }
        }
    }
}
