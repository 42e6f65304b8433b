//! The errors the gateway answers with: their codes, one enum rather than strings spelled out
//! where each is raised, and the error itself with its path and locations.

use std::fmt;

use apollo_compiler::Name;
use apollo_compiler::response::{JsonMap, JsonValue};

/// The `extensions.code` of a gateway error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// The request's document does not parse.
    GraphqlParseFailed,
    /// The document does not validate against the API schema.
    GraphqlValidationFailed,
    /// The request names an operation its document does not have.
    GraphqlUnknownOperationName,
    /// The request is not a GraphQL request the gateway can read.
    BadRequest,
    /// A variable or argument value is refused.
    BadUserInput,
    /// Something asked for needs a signed-in caller.
    Unauthenticated,
    /// The bearer token does not verify.
    InvalidToken,
    /// The caller may not do this (scopes, policies).
    Forbidden,
    /// A field or type the caller may not see was left out.
    UnauthorizedFieldOrType,
    /// Introspection is turned off for this caller.
    IntrospectionDisabled,
    /// No plan answers the operation.
    QueryPlanningFailed,
    /// The operation nests deeper than allowed.
    MaxDepthExceeded,
    /// The operation selects more fields than allowed.
    MaxFieldsExceeded,
    /// The operation selects more aliased fields than allowed.
    MaxAliasesExceeded,
    /// The operation selects more root fields than allowed.
    MaxRootFieldsExceeded,
    /// The operation's estimated cost is over the limit.
    CostEstimatedTooExpensive,
    /// The response would be larger than allowed.
    ResponseTooLarge,
    /// The request's fetches would send more entity representations than allowed.
    MaxRepresentationsExceeded,
    /// The request ran out of time before a fetch answered.
    GatewayTimeout,
    /// A subgraph answered with errors or nothing usable.
    DownstreamServiceError,
    /// A subgraph could not be reached or answered over HTTP with a failure.
    SubrequestHttpError,
    /// A subgraph gave null for a non-null field.
    NullForNonNull,
    /// A subgraph gave an enum value the schema does not have.
    InvalidEnumValue,
    /// The HTTP method cannot carry this operation (a mutation over GET).
    MethodNotAllowed,
    /// No media type the client accepts can carry the answer.
    NotAcceptable,
    /// The request body's media type is not JSON.
    UnsupportedMediaType,
    /// The request body is larger than allowed.
    PayloadTooLarge,
    /// A request a browser could have sent unasked, with the sign-in cookie.
    CsrfPrevented,
    /// More subscriptions than the gateway or the connection may hold.
    TooManySubscriptions,
    /// The subscription's client did not read its events fast enough.
    SubscriptionBufferFull,
    /// A newer supergraph serves: subscribe again.
    SubscriptionSchemaReload,
    /// The gateway is stopping.
    SubscriptionServerShutdown,
    /// A subscription needs a streaming transport.
    SubscriptionTransport,
}

impl Code {
    /// As it appears in `extensions.code`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            Self::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            Self::GraphqlUnknownOperationName => "GRAPHQL_UNKNOWN_OPERATION_NAME",
            Self::BadRequest => "BAD_REQUEST",
            Self::BadUserInput => "BAD_USER_INPUT",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::Forbidden => "FORBIDDEN",
            Self::UnauthorizedFieldOrType => "UNAUTHORIZED_FIELD_OR_TYPE",
            Self::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Self::QueryPlanningFailed => "QUERY_PLANNING_FAILED",
            Self::MaxDepthExceeded => "MAX_DEPTH_EXCEEDED",
            Self::MaxFieldsExceeded => "MAX_FIELDS_EXCEEDED",
            Self::MaxAliasesExceeded => "MAX_ALIASES_EXCEEDED",
            Self::MaxRootFieldsExceeded => "MAX_ROOT_FIELDS_EXCEEDED",
            Self::CostEstimatedTooExpensive => "COST_ESTIMATED_TOO_EXPENSIVE",
            Self::ResponseTooLarge => "RESPONSE_TOO_LARGE",
            Self::MaxRepresentationsExceeded => "MAX_REPRESENTATIONS_EXCEEDED",
            Self::GatewayTimeout => "GATEWAY_TIMEOUT",
            Self::DownstreamServiceError => "DOWNSTREAM_SERVICE_ERROR",
            Self::SubrequestHttpError => "SUBREQUEST_HTTP_ERROR",
            Self::NullForNonNull => "NULL_FOR_NON_NULL",
            Self::InvalidEnumValue => "INVALID_ENUM_VALUE",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::CsrfPrevented => "CSRF_PREVENTED",
            Self::TooManySubscriptions => "TOO_MANY_SUBSCRIPTIONS",
            Self::SubscriptionBufferFull => "SUBSCRIPTION_BUFFER_FULL",
            Self::SubscriptionSchemaReload => "SUBSCRIPTION_SCHEMA_RELOAD",
            Self::SubscriptionServerShutdown => "SUBSCRIPTION_SERVER_SHUTDOWN",
            Self::SubscriptionTransport => "SUBSCRIPTION_TRANSPORT_UNSUPPORTED",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// One step of a concrete response path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(Name),
    Index(usize),
}

/// An error for the response's `errors`.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphqlError {
    pub message: String,
    pub path: Option<Vec<Segment>>,
    /// 1-based `(line, column)`s in the operation.
    pub locations: Vec<(usize, usize)>,
    /// `extensions`, with `code` set.
    pub extensions: JsonMap,
}

impl GraphqlError {
    pub fn new(message: impl Into<String>, code: Code) -> Self {
        let mut extensions = JsonMap::new();
        extensions.insert("code", JsonValue::from(code.as_str()));
        Self {
            message: message.into(),
            path: None,
            locations: Vec::new(),
            extensions,
        }
    }

    #[must_use]
    pub fn at(mut self, path: Vec<Segment>) -> Self {
        self.path = Some(path);
        self
    }

    pub fn to_json(&self) -> JsonValue {
        let mut map = JsonMap::new();
        map.insert("message", JsonValue::from(self.message.as_str()));
        if !self.locations.is_empty() {
            let locations = self.locations.iter().map(|(line, column)| {
                let mut location = JsonMap::new();
                location.insert("line", JsonValue::from(*line as u64));
                location.insert("column", JsonValue::from(*column as u64));
                JsonValue::Object(location)
            });
            map.insert("locations", JsonValue::Array(locations.collect()));
        }
        if let Some(path) = &self.path {
            map.insert("path", path_json(path));
        }
        map.insert("extensions", JsonValue::Object(self.extensions.clone()));
        JsonValue::Object(map)
    }
}

pub fn path_json(path: &[Segment]) -> JsonValue {
    JsonValue::Array(
        path.iter()
            .map(|segment| match segment {
                Segment::Key(key) => JsonValue::from(key.as_str()),
                Segment::Index(index) => JsonValue::from(*index as u64),
            })
            .collect(),
    )
}
