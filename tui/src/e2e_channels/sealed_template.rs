//! `template_apply` to a verified host: the relay cannot fill in the published template on a
//! sealed stream (it cannot read the body), and the host would not trust it if it did. This
//! laptop fetches the published version itself (`template_show`, a relay operation), checks
//! that its content matches its hash, and sends it inside the sealed body; the signed header
//! names the template (name, version, hash) so the relay can audit what is applied, and covers
//! the body's hash, so the host applies exactly what the operator signed.

use super::HostStreams;
use cm_client::LinkError;
use cm_client::framed::StreamError;
use proto::frame::{LEN_PREFIX, MAX_FRAME_LEN};
use proto::header::{Op, StreamHeader};
use proto::message::Reply;
use proto::template::{Template, TemplateApply, TemplateQuery, TemplateRef};
use proto::wire_error::{ErrorCode, WireError};

/// The body frame with the published template filled in, and the template it carries.
///
/// # Errors
/// A body that is not a `template_apply`, the relay's refusal of `template_show`, or a
/// template whose content does not match its hash.
pub(super) async fn fill(
    streams: &HostStreams,
    frame: &[u8],
) -> Result<(Vec<u8>, TemplateRef), LinkError> {
    let body = frame
        .get(LEN_PREFIX..)
        .ok_or_else(|| super::protocol("a template_apply without a body"))?;
    let mut apply: TemplateApply = serde_json::from_slice(body)
        .map_err(|e| super::protocol(format!("template_apply body: {e}")))?;
    let template = published(streams, &apply).await?;
    apply.version = Some(template.id.version);
    let id = template.id.clone();
    apply.resolved = Some(template);
    let frame = proto::frame::to_frame(&apply, MAX_FRAME_LEN).map_err(StreamError::from)?;
    Ok((frame.to_vec(), id))
}

/// The published version `apply` names, as the relay serves it, checked against its hash.
async fn published(streams: &HostStreams, apply: &TemplateApply) -> Result<Template, LinkError> {
    let query = TemplateQuery {
        name: apply.name.clone(),
        version: apply.version,
    };
    let frame = proto::frame::to_frame(&query, MAX_FRAME_LEN).map_err(StreamError::from)?;
    let header = StreamHeader::new(Op::TemplateShow, streams.next_req_id());
    let mut stream = streams
        .open_plain(&header, Some(&frame), super::OpenOptions::FINISH)
        .await?;
    let reply: Reply<Template> = stream.recv.expect().await?;
    let template = reply.into_result().map_err(LinkError::Refused)?;
    if template.id.name != apply.name
        || apply.version.is_some_and(|v| v != template.id.version)
        || !template.hash_matches()
    {
        return Err(LinkError::Refused(WireError::new(
            ErrorCode::BadRequest,
            format!(
                "the relay served template {} v{} whose name, version or content does not match what was asked ({}) or its hash; not sent to the host",
                template.id.name, template.id.version, apply.name
            ),
        )));
    }
    Ok(template)
}
