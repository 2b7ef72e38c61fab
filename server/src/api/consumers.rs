//! Read-only operations on enhanced fan-out consumers, from this core's catalog snapshot:
//! DescribeStreamConsumer, ListStreamConsumers. (Registering and deregistering change the
//! catalog: `control/`. Subscribing: `fanout.rs`.)

use std::rc::Rc;

use spate_proto::ApiError;
use spate_proto::limits::LIST_STREAM_CONSUMERS_PAGE_MAX;
use spate_proto::requests::{ConsumerInput, ListStreamConsumersInput};
use spate_proto::responses as out;

use super::{check_token_age, decode_token, encode_token};
use crate::core::Core;
use crate::lookup::{ApiResult, arn_ref, find_consumer, stream_handle};
use crate::wire::wire_consumer;

pub fn describe_consumer(core: &Rc<Core>, r: ConsumerInput) -> ApiResult {
    let consumer = r.consumer_ref()?;
    let catalog = core.catalog();
    let (stream, found) = find_consumer(core, &catalog, &consumer)?;
    let config = core.config();
    let c = wire_consumer(core.config(), stream, found);
    Ok(spate_proto::to_json(&out::DescribeStreamConsumerOutput {
        consumer_description: out::ConsumerDescription {
            consumer_name: c.consumer_name,
            consumer_arn: c.consumer_arn,
            consumer_status: c.consumer_status,
            consumer_creation_timestamp: c.consumer_creation_timestamp,
            stream_arn: stream.arn(&config.region, &config.account_id),
        },
    }))
}

pub fn list_consumers(core: &Rc<Core>, r: ListStreamConsumersInput) -> ApiResult {
    let arn = r.stream()?;
    let handle = stream_handle(core, &arn_ref(arn))?;
    let stream = handle.meta();
    // "If you specify a value greater than 100, at most 100 results are returned."
    let limit = r
        .max_results
        .map_or(LIST_STREAM_CONSUMERS_PAGE_MAX, |m| m as usize)
        .min(LIST_STREAM_CONSUMERS_PAGE_MAX);
    // The token is "<position>\n<issued ms>": it expires after 300 seconds, as the model says.
    let skip = match &r.next_token {
        Some(token) => {
            let text = decode_token(token).ok_or_else(ApiError::invalid_next_token)?;
            let (position, issued) =
                text.split_once('\n').ok_or_else(ApiError::invalid_next_token)?;
            let position: usize = position.parse().map_err(|_| ApiError::invalid_next_token())?;
            check_token_age(core, token, issued)?;
            position
        }
        None => 0,
    };
    let all: Vec<out::Consumer> =
        stream.consumers.iter().map(|c| wire_consumer(core.config(), stream, c)).collect();
    let page: Vec<out::Consumer> = all.iter().skip(skip).take(limit).cloned().collect();
    let next_token = (skip + page.len() < all.len())
        .then(|| encode_token(&format!("{}\n{}", skip + page.len(), core.now_ms())));
    Ok(spate_proto::to_json(&out::ListStreamConsumersOutput { consumers: page, next_token }))
}
