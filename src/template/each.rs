//! `{{#each}}` with a budget: handlebars' own loop, charging each iteration to
//! the render budget before it renders, so nested loops over a payload's arrays
//! stop at the budget instead of running for seconds. Everything else is as
//! handlebars does it: `this`, `@index`, `@key`, `@first`, `@last`, block
//! parameters (`as |item i|`) and `{{else}}` for an empty or missing list.

use handlebars::{
    BlockContext, BlockParams, Context, Handlebars, Helper, HelperDef, HelperResult, Output, RenderContext,
    RenderError, RenderErrorReason, Renderable, to_json,
};
use serde_json::Value;

use super::budget;

pub(super) struct Each;

impl HelperDef for Each {
    fn call<'reg: 'rc, 'rc>(
        &self,
        helper: &Helper<'rc>,
        registry: &'reg Handlebars<'reg>,
        context: &'rc Context,
        render_context: &mut RenderContext<'reg, 'rc>,
        out: &mut dyn Output,
    ) -> HelperResult {
        let value = helper
            .param(0)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("each", 0))?;
        let Some(template) = helper.template() else {
            return Ok(());
        };
        // An iteration costs one unit and one per element of what it renders.
        let per_iteration = 1 + template.elements.len() as u64;
        // Keys are made as the loop gets to them: a huge list costs nothing
        // before the budget stops it.
        let (count, entries): (usize, Box<dyn Iterator<Item = (Value, &Value)>>) = match value.value() {
            Value::Array(items) if !items.is_empty() || helper.inverse().is_none() => (
                items.len(),
                Box::new(items.iter().enumerate().map(|(index, item)| (to_json(index), item))),
            ),
            Value::Object(fields) if !fields.is_empty() || helper.inverse().is_none() => (
                fields.len(),
                Box::new(fields.iter().map(|(key, item)| (to_json(key), item))),
            ),
            _ => {
                return match helper.inverse() {
                    Some(otherwise) => otherwise.render(registry, context, render_context, out),
                    None => Ok(()),
                };
            }
        };
        let is_object = value.value().is_object();
        let mut block = BlockContext::new();
        match value.context_path() {
            Some(path) => block.base_path_mut().clone_from(path),
            None => block.set_base_value(value.value().clone()),
        }
        render_context.push_block(block);
        let base_path = value.context_path();
        for (position, (key, item)) in entries.enumerate() {
            budget::spend_work(per_iteration)?;
            if let Some(block) = render_context.block_mut() {
                block.set_local_var("first", to_json(position == 0));
                block.set_local_var("last", to_json(position + 1 == count));
                block.set_local_var("index", to_json(position));
                if is_object {
                    block.set_local_var("key", key.clone());
                }
                let segment = match &key {
                    Value::String(name) => name.clone(),
                    other => other.to_string(),
                };
                match base_path {
                    Some(path) => {
                        let mut item_path = path.clone();
                        item_path.push(segment);
                        *block.base_path_mut() = item_path;
                    }
                    None => block.set_base_value(item.clone()),
                }
                set_block_params(block, helper, base_path.is_some(), &key, item)?;
            }
            template.render(registry, context, render_context, out)?;
        }
        render_context.pop_block();
        Ok(())
    }
}

/// `as |item|` and `as |item key|`.
fn set_block_params<'rc>(
    block: &mut BlockContext<'rc>,
    helper: &Helper<'rc>,
    by_path: bool,
    key: &Value,
    item: &Value,
) -> Result<(), RenderError> {
    let (item_name, key_name) = match (helper.block_param(), helper.block_param_pair()) {
        (Some(item_name), _) => (item_name, None),
        (None, Some((item_name, key_name))) => (item_name, Some(key_name)),
        (None, None) => return Ok(()),
    };
    let mut params = BlockParams::new();
    if by_path {
        params.add_path(item_name, Vec::new())?;
    } else {
        params.add_value(item_name, item.clone())?;
    }
    if let Some(key_name) = key_name {
        params.add_value(key_name, key.clone())?;
    }
    block.set_block_params(params);
    Ok(())
}
