//! The relay's OpenCode config templates: list, show, publish (placeholders until the store
//! keeps templates; each answers "not served").

use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use proto::op;
use proto::operation::Operation;
use proto::template::{Template, TemplatePublish, TemplateQuery, TemplateSummary};

impl LocalHandler for op::TemplateList {
    async fn handle(_cx: &mut Cx<'_>, (): ()) -> Result<Vec<TemplateSummary>, RequestError> {
        Err(RequestError::NotServed(Self::OP))
    }
}

impl LocalHandler for op::TemplateShow {
    async fn handle(_cx: &mut Cx<'_>, _q: TemplateQuery) -> Result<Template, RequestError> {
        Err(RequestError::NotServed(Self::OP))
    }
}

impl LocalHandler for op::TemplatePublish {
    async fn handle(
        _cx: &mut Cx<'_>,
        _q: TemplatePublish,
    ) -> Result<TemplateSummary, RequestError> {
        Err(RequestError::NotServed(Self::OP))
    }
}
