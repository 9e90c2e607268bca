//! The documented shapes of the request bodies whose fields are other crates' types: a pipeline
//! is a name plus its specification (`lockstep_engine::PipelineSpec`), a connection is one of the
//! kinds, each with its own settings (`lockstep_connectors`) and secrets. The handlers read these
//! bodies as JSON and the use cases check them; these schemas say the same rules to callers.

use lockstep_app::connectors::ConnectionKind;
use lockstep_app::connectors::files::FilesConfig;
use lockstep_app::connectors::mysql::MysqlConfig;
use lockstep_app::connectors::postgres::PostgresConfig;
use lockstep_app::connectors::rest::RestConfig;
use lockstep_app::connectors::sqlite::SqliteConfig;
use lockstep_app::connectors::tryton::TrytonConfig;
use lockstep_app::engine::PipelineSpec;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, Object, ObjectBuilder, OneOfBuilder, Ref, Schema, Type,
};
use utoipa::{PartialSchema, ToSchema};

/// Text a person reads: no control characters and not only white space.
const TEXT: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$";

/// A connection's or pipeline's name: 1 to 100 characters, no control characters.
fn name() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(100))
        .pattern(Some(TEXT))
        .description(Some("1 to 100 characters, without control characters."))
        .into()
}

fn nullable(schema: RefOr<Schema>) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(schema)
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}

fn spec_object() -> Object {
    match PipelineSpec::schema() {
        RefOr::T(Schema::Object(object)) => object,
        // The derive makes an object; anything else would be a change to notice in review.
        _ => Object::new(),
    }
}

fn spec_schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((PipelineSpec::name().into_owned(), PipelineSpec::schema()));
    <PipelineSpec as ToSchema>::schemas(out);
}

/// `POST /api/v1/pipelines`: `name` and the specification's fields.
pub(crate) fn new_pipeline() -> RefOr<Schema> {
    let mut object = spec_object();
    object.description = Some(
        "A pipeline definition: `name` plus the specification's fields (see `PipelineSpec`)."
            .to_owned(),
    );
    object.properties.insert("name".to_owned(), name());
    object.required.insert(0, "name".to_owned());
    Schema::Object(object).into()
}

/// `PATCH /api/v1/pipelines/{id}`: any of the fields; `null` resets an optional one.
pub(crate) fn pipeline_patch() -> RefOr<Schema> {
    let mut object = spec_object();
    object.description = Some(
        "A partial change: only the fields sent change; each specification field sent replaces \
         the stored one as a whole, and `null` resets an optional one to its default."
            .to_owned(),
    );
    let required = std::mem::take(&mut object.required);
    for (field, schema) in &mut object.properties {
        if !required.contains(field) {
            *schema = nullable(schema.clone());
        }
    }
    object.properties.insert("name".to_owned(), name());
    Schema::Object(object).into()
}

pub(crate) fn pipeline_schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    spec_schemas(out);
}

/// A secret value: 1 byte to 64 KiB (as UTF-8), stored encrypted and never shown.
fn secret(nullable_value: bool) -> RefOr<Schema> {
    let text: RefOr<Schema> = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(64 * 1024))
        .description(Some("1 byte to 64 KiB as UTF-8."))
        .into();
    if nullable_value { nullable(text) } else { text }
}

/// The secrets a kind takes. A `rest` connection keeps only those its `auth` uses.
fn secret_fields(kind: ConnectionKind) -> &'static [&'static str] {
    match kind {
        ConnectionKind::Rest => &["api_key", "password", "client_secret"],
        other => other.secret_fields(),
    }
}

fn secrets(kind: ConnectionKind, patch: bool) -> RefOr<Schema> {
    let mut builder = ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .description(Some(if patch {
            "Secrets to set; `null` removes one; secrets not named are kept."
        } else {
            "Secret fields by name: stored encrypted, never shown again."
        }));
    for field in secret_fields(kind) {
        builder = builder.property(*field, secret(patch));
    }
    builder.into()
}

fn config_ref(kind: ConnectionKind) -> RefOr<Schema> {
    let name = match kind {
        ConnectionKind::Postgres => PostgresConfig::name(),
        ConnectionKind::Mysql => MysqlConfig::name(),
        ConnectionKind::Sqlite => SqliteConfig::name(),
        ConnectionKind::Files => FilesConfig::name(),
        ConnectionKind::Rest => RestConfig::name(),
        ConnectionKind::Tryton => TrytonConfig::name(),
    };
    Ref::from_schema_name(name).into()
}

/// One kind's body. Creating needs `name`, `kind` and (except `files`, whose settings all have
/// defaults) `config`; a change needs nothing and cannot change `kind`.
fn connection_variant(kind: ConnectionKind, patch: bool) -> RefOr<Schema> {
    let mut builder = ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some(kind.as_str()))
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .property("name", name())
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind.as_str()])),
        )
        .property("config", config_ref(kind))
        .property("secrets", secrets(kind, patch));
    if !patch {
        builder = builder.required("name").required("kind");
        if kind != ConnectionKind::Files {
            builder = builder.required("config");
        }
    }
    builder.into()
}

/// `POST /api/v1/connections`: one of the kinds.
pub(crate) fn new_connection() -> RefOr<Schema> {
    let mut one_of = OneOfBuilder::new().description(Some(
        "A connection: `kind` says which settings `config` holds.",
    ));
    for kind in ConnectionKind::ALL {
        one_of = one_of.item(connection_variant(kind, false));
    }
    one_of.into()
}

/// `PATCH /api/v1/connections/{id}`: the fields to change, in the shape of one of the kinds
/// (`config` is checked against the connection's own kind; `kind`, when sent, must be it).
pub(crate) fn connection_patch() -> RefOr<Schema> {
    let mut any_of = AnyOfBuilder::new().description(Some(
        "A change: `name`, the whole new `config` (replaces the old one) and `secrets` (`null` \
         removes one; secrets not named are kept). `kind` cannot change; sent, it is checked.",
    ));
    for kind in ConnectionKind::ALL {
        any_of = any_of.item(connection_variant(kind, true));
    }
    any_of.into()
}

pub(crate) fn connection_schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
    fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
        out.push((T::name().into_owned(), T::schema()));
        T::schemas(out);
    }
    add::<PostgresConfig>(out);
    add::<MysqlConfig>(out);
    add::<SqliteConfig>(out);
    add::<FilesConfig>(out);
    add::<RestConfig>(out);
    add::<TrytonConfig>(out);
}
