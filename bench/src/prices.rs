//! AWS list prices the cost figures use: US East (N. Virginia), on-demand, arm64 Lambda, as
//! published on each service's pricing page (read 2026-12-05). Free tiers are left out: a
//! price per 1 000 URLs should hold for the account's millionth URL as for its first.
//! Change them here and nowhere else.

/// Region and date the prices below were read for.
pub const REGION: &str = "us-east-1";
pub const READ_ON: &str = "2026-12-05";

/// One priced unit, with where the price was read.
pub struct Price {
    pub dollars: f64,
    pub per: &'static str,
    pub source: &'static str,
}

const fn price(dollars: f64, per: &'static str, source: &'static str) -> Price {
    Price { dollars, per, source }
}

const LAMBDA: &str = "https://aws.amazon.com/lambda/pricing/";
const DYNAMODB: &str = "https://aws.amazon.com/dynamodb/pricing/on-demand/";
const SQS: &str = "https://aws.amazon.com/sqs/pricing/";
const EVENTBRIDGE: &str = "https://aws.amazon.com/eventbridge/pricing/";
const CLOUDWATCH: &str = "https://aws.amazon.com/cloudwatch/pricing/";
const S3: &str = "https://aws.amazon.com/s3/pricing/";
const API_GATEWAY: &str = "https://aws.amazon.com/api-gateway/pricing/";

/// Lambda: each invocation, and each GB-second of an arm64 function (first tier).
pub const LAMBDA_REQUEST: Price = price(0.20 / 1e6, "request", LAMBDA);
pub const LAMBDA_GB_SECOND_ARM: Price = price(0.000_013_333_4, "GB-second (arm64)", LAMBDA);
/// DynamoDB on-demand (Standard table class): write and read request units, storage.
pub const DYNAMODB_WRITE_UNIT: Price = price(0.625 / 1e6, "write request unit", DYNAMODB);
pub const DYNAMODB_READ_UNIT: Price = price(0.125 / 1e6, "read request unit", DYNAMODB);
pub const DYNAMODB_GB_MONTH: Price = price(0.25, "GB-month stored", DYNAMODB);
/// SQS standard queues: each request of up to 64 KB (the event source mapping's included).
pub const SQS_REQUEST: Price = price(0.40 / 1e6, "request", SQS);
/// EventBridge: each custom event published (64 KB chunks).
pub const EVENTBRIDGE_EVENT: Price = price(1.00 / 1e6, "custom event", EVENTBRIDGE);
/// CloudWatch Logs (Standard class): ingestion, and storage (compressed; priced here on the
/// raw bytes, which overstates it).
pub const LOGS_GB_INGESTED: Price = price(0.50, "GB ingested", CLOUDWATCH);
pub const LOGS_GB_MONTH: Price = price(0.03, "GB-month archived", CLOUDWATCH);
/// S3 Standard: PUT-class and GET-class requests, storage.
pub const S3_PUT: Price = price(0.005 / 1e3, "PUT/COPY/POST/LIST request", S3);
pub const S3_GET: Price = price(0.0004 / 1e3, "GET request", S3);
pub const S3_GB_MONTH: Price = price(0.023, "GB-month stored", S3);
/// API Gateway HTTP API: each request (first 300 million a month).
pub const HTTP_API_REQUEST: Price = price(1.00 / 1e6, "request", API_GATEWAY);

/// Every price, for the table that quotes them.
pub const ALL: [(&str, &Price); 13] = [
    ("Lambda requests", &LAMBDA_REQUEST),
    ("Lambda duration", &LAMBDA_GB_SECOND_ARM),
    ("DynamoDB writes", &DYNAMODB_WRITE_UNIT),
    ("DynamoDB reads", &DYNAMODB_READ_UNIT),
    ("DynamoDB storage", &DYNAMODB_GB_MONTH),
    ("SQS requests", &SQS_REQUEST),
    ("EventBridge events", &EVENTBRIDGE_EVENT),
    ("CloudWatch Logs ingestion", &LOGS_GB_INGESTED),
    ("CloudWatch Logs storage", &LOGS_GB_MONTH),
    ("S3 PUT requests", &S3_PUT),
    ("S3 GET requests", &S3_GET),
    ("S3 storage", &S3_GB_MONTH),
    ("HTTP API requests", &HTTP_API_REQUEST),
];
