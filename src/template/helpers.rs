//! Ferry's helpers on top of handlebars' built-ins (`eq`, `ne`, `lt`, `lte`, `gt`,
//! `gte`, `and`, `or`, `not`, `len`, and the block helpers).

use handlebars::{Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason};

pub(super) fn register(registry: &mut Handlebars<'static>) {
    registry.register_helper("json", Box::new(json_helper));
    // handlebars' `log` would write template data around redaction.
    registry.unregister_helper("log");
}

/// `{{json x}}`: the parameter serialised as JSON text (`null` when missing).
fn json_helper(
    helper: &Helper<'_>,
    _: &Handlebars<'_>,
    _: &Context,
    _: &mut RenderContext<'_, '_>,
    out: &mut dyn Output,
) -> HelperResult {
    let value = helper.param(0).map(|param| param.value().clone()).unwrap_or_default();
    let text = serde_json::to_string(&value).map_err(|error| RenderErrorReason::Other(error.to_string()))?;
    out.write(&text)?;
    Ok(())
}
