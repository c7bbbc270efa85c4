//! The `kms.audit.v1.Audit` contract mapped onto the domain.

use kms_proto::audit::v1 as pb;
use tonic::{Request, Response, Status};
use tracing::instrument;

use std::sync::Arc;

use crate::delivery::Delivery;
use crate::error::Error;
use crate::lookup::{Cursor, Lookup, LookupRequest, StoredEvent};
use crate::records::{Record, Resource};
use crate::store::Store;
use crate::writer::Appender;

pub struct AuditService<S> {
    store: S,
    appender: Appender,
    delivery: Option<Arc<Delivery>>,
}

impl<S: Store> AuditService<S> {
    pub fn new(store: S, appender: Appender) -> Self {
        Self {
            store,
            appender,
            delivery: None,
        }
    }

    /// Serve Flush and ListPublicKeys from this log file delivery.
    pub fn with_delivery(mut self, delivery: Option<Arc<Delivery>>) -> Self {
        self.delivery = delivery;
        self
    }
}

impl From<pb::Resource> for Resource {
    fn from(r: pb::Resource) -> Self {
        Self {
            resource_type: r.resource_type,
            resource_name: r.resource_name,
        }
    }
}

impl From<Resource> for pb::Resource {
    fn from(r: Resource) -> Self {
        Self {
            resource_type: r.resource_type,
            resource_name: r.resource_name,
        }
    }
}

impl From<pb::AuditRecord> for Record {
    fn from(r: pb::AuditRecord) -> Self {
        Self {
            event_id: r.event_id,
            event_time_ms: r.event_time_ms,
            event_name: r.event_name,
            event_source: r.event_source,
            read_only: r.read_only,
            username: r.username,
            access_key_id: r.access_key_id,
            resources: r.resources.into_iter().map(Resource::from).collect(),
            recipient_account_ids: r.recipient_account_ids,
            cloudtrail_event: r.cloudtrail_event,
            request_id: r.request_id,
        }
    }
}

impl From<pb::LookupEventsRequest> for LookupRequest {
    fn from(r: pb::LookupEventsRequest) -> Self {
        Self {
            account_id: r.account_id,
            attribute_key: r.attribute_key,
            attribute_value: r.attribute_value,
            start_time_ms: r.start_time_ms,
            end_time_ms: r.end_time_ms,
            max_results: r.max_results,
            next_token: r.next_token,
        }
    }
}

impl From<StoredEvent> for pb::Event {
    fn from(e: StoredEvent) -> Self {
        Self {
            event_id: e.event_id,
            event_name: e.event_name,
            read_only: e.read_only,
            access_key_id: e.access_key_id,
            event_time_ms: e.event_time_ms,
            event_source: e.event_source,
            username: e.username,
            resources: e.resources.into_iter().map(pb::Resource::from).collect(),
            cloudtrail_event: e.cloudtrail_event,
        }
    }
}

#[tonic::async_trait]
impl<S: Store> pb::audit_server::Audit for AuditService<S> {
    #[instrument(skip_all, fields(records = request.get_ref().records.len()))]
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        // Set only by a sender in this process that serialized the events itself.
        let serialized = request
            .extensions()
            .get::<kms_proto::audit::SerializedEvents>()
            .is_some();
        let records = request.into_inner().records;
        let count = records.len() as u64;
        let mut copies = Vec::with_capacity(records.len());
        for r in records {
            let record = Record::from(r);
            copies.extend(if serialized {
                record.into_copies_of_serialized()?
            } else {
                record.into_copies()?
            });
        }
        self.appender.append(copies).await?;
        Ok(Response::new(pb::AppendResponse { committed: count }))
    }

    #[instrument(skip_all, fields(account_id = %request.get_ref().account_id))]
    async fn lookup_events(
        &self,
        request: Request<pb::LookupEventsRequest>,
    ) -> Result<Response<pb::LookupEventsResponse>, Status> {
        let lookup = Lookup::try_from(LookupRequest::from(request.into_inner()))?;
        let mut events = self.store.lookup(&lookup).await?;
        let page = lookup.max_results as usize;
        let next_token = if events.len() > page {
            events.truncate(page);
            let last = events
                .last()
                .ok_or_else(|| Error::Corrupt("empty page".into()))?;
            lookup.encode_token(Cursor {
                event_time_ms: last.event_time_ms,
                seq: last.seq,
            })
        } else {
            String::new()
        };
        Ok(Response::new(pb::LookupEventsResponse {
            events: events.into_iter().map(pb::Event::from).collect(),
            next_token,
        }))
    }

    #[instrument(skip_all)]
    async fn flush(
        &self,
        request: Request<pb::FlushRequest>,
    ) -> Result<Response<pb::FlushResponse>, Status> {
        let delivery = self.delivery.as_ref().ok_or(Error::NoLogDir)?;
        let flushed = delivery.flush(request.into_inner().digest).await?;
        Ok(Response::new(pb::FlushResponse {
            log_files: flushed.log_files,
            digest_files: flushed.digest_files,
        }))
    }

    #[instrument(skip_all)]
    async fn list_public_keys(
        &self,
        request: Request<pb::ListPublicKeysRequest>,
    ) -> Result<Response<pb::ListPublicKeysResponse>, Status> {
        let r = request.into_inner();
        if let (Some(s), Some(e)) = (r.start_time_ms, r.end_time_ms)
            && s > e
        {
            return Err(Error::InvalidTimeRange(
                "Occurs if the timestamp values are not valid. Either the start time occurs after the end time, or the time range is outside the range of possible values.".into(),
            )
            .into());
        }
        let Some(delivery) = &self.delivery else {
            return Ok(Response::new(pb::ListPublicKeysResponse::default()));
        };
        let keys = delivery.public_keys(r.start_time_ms, r.end_time_ms).await?;
        Ok(Response::new(pb::ListPublicKeysResponse {
            public_key_list: keys
                .into_iter()
                .map(|k| pb::PublicKey {
                    value: k.der,
                    validity_start_time_ms: k.valid_from_ms,
                    validity_end_time_ms: k.valid_to_ms,
                    fingerprint: k.fingerprint,
                })
                .collect(),
        }))
    }
}
