//! The served OpenAPI document as a checker of answers: every `/v1` answer the tests get is
//! held to the document (its status is one the operation declares, its body matches that
//! status's schema), so a test cannot pass on an answer the app could not rely on.

use serde_json::{Map, Value, json};
use std::sync::OnceLock;

pub struct Document {
    /// (method, path template split into segments, operation)
    operations: Vec<(String, Vec<String>, Value)>,
    /// `components`, with OpenAPI 3.0's `nullable` turned into JSON Schema.
    components: Value,
}

/// The document the server serves (`encore::api::OPENAPI`), parsed once.
pub fn document() -> &'static Document {
    static DOC: OnceLock<Document> = OnceLock::new();
    DOC.get_or_init(|| {
        let doc: Value = serde_json::from_str(encore::api::OPENAPI).unwrap();
        let mut operations = Vec::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            let segments: Vec<String> = path.split('/').map(str::to_owned).collect();
            for (method, op) in ops.as_object().unwrap() {
                operations.push((method.to_uppercase(), Vec::clone(&segments), op.clone()));
            }
        }
        Document {
            operations,
            components: json_schema(&doc["components"]),
        }
    })
}

/// OpenAPI 3.0 schema -> JSON Schema: `nullable: true` becomes a `null` alternative.
fn json_schema(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        Value::Object(map) => {
            let mut out: Map<String, Value> = map
                .iter()
                .filter(|(k, _)| k.as_str() != "nullable")
                .map(|(k, v)| (k.clone(), json_schema(v)))
                .collect();
            if map.get("nullable") != Some(&Value::Bool(true)) {
                return Value::Object(out);
            }
            match out.remove("type") {
                Some(Value::String(t)) => {
                    out.insert("type".into(), json!([t, "null"]));
                    Value::Object(out)
                }
                Some(other) => {
                    out.insert("type".into(), other);
                    json!({"anyOf": [Value::Object(out), {"type": "null"}]})
                }
                None => json!({"anyOf": [Value::Object(out), {"type": "null"}]}),
            }
        }
        other => other.clone(),
    }
}

impl Document {
    /// Panics unless `status` and `body` are what the document says `method path` answers.
    /// Paths the document does not have (the router's fallback) are not checked.
    pub fn check(&self, method: &str, path: &str, status: u16, body: &Value) {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        let Some((_, _, op)) = self.operations.iter().find(|(m, template, _)| {
            m == method
                && template.len() == segments.len()
                && template
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t.starts_with('{') || t == s)
        }) else {
            return;
        };
        let responses = &op["responses"];
        let Some(response) = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
        else {
            panic!(
                "{method} {path} answered {status}, which the document does not declare: {body}"
            );
        };
        let Some(schema) = response
            .pointer("/content/application~1json/schema")
            .map(json_schema)
        else {
            assert!(
                body.is_null(),
                "{method} {path} {status} has no body in the document but answered {body}"
            );
            return;
        };
        let mut root = schema.as_object().cloned().unwrap_or_default();
        root.insert("components".into(), self.components.clone());
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap();
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the document: {errors:?}\n{body}"
        );
    }
}
