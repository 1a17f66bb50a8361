#!/usr/bin/env python3
"""Helpers around `sam deploy` to the local emulator.

  prepare          create the artifact bucket sam deploy uploads to
  finish           read the stack's outputs, make sure a dev API key exists, write
                   .local/stack.env and print API_URL / API_KEY
  key TENANT       create an API key for TENANT and print it (only its SHA-256 is stored);
                   MAX_ACTIVE_JOBS, MAX_URLS_PER_DAY, MAX_IN_FLIGHT, QUOTA_WEIGHT in the
                   environment set the tenant's own limits as `limits` does
  limits TENANT    set the tenant's own limits from MAX_ACTIVE_JOBS, MAX_URLS_PER_DAY,
                   MAX_IN_FLIGHT, QUOTA_WEIGHT (a number, or `default` to follow the
                   deployment again) and print them

Runs with the SAM venv's Python (boto3). Talks only to AWS_ENDPOINT_URL (the emulator).
"""
import hashlib
import os
import secrets
import sys
import time
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
STACK = os.environ.get("STACK_NAME", "speedbatch-local")
# The dev stack's values in .local/stack.env; another stack (the chaos suite's) in its own file.
STACK_ENV = Path(os.environ["STACK_ENV_FILE"]) if os.environ.get("STACK_ENV_FILE") else ROOT / ".local" / "stack.env"
BUCKET = "speedbatch-local-artifacts"
# The local stack's Chrome UX Report key (samconfig.toml names the parameter): any value does,
# the fake CrUX server checks it.
CRUX_KEY_PARAMETER = "/speedbatch/local/crux-key"
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")


def client(service):
    return boto3.client(service, endpoint_url=ENDPOINT, region_name=os.environ.get("AWS_REGION", "us-east-1"),
                        aws_access_key_id="test", aws_secret_access_key="test")


def outputs():
    stacks = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def read_env():
    if not STACK_ENV.exists():
        return {}
    pairs = (line.split("=", 1) for line in STACK_ENV.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def store_key(table, key, tenant):
    digest = hashlib.sha256(key.encode()).hexdigest()
    client("dynamodb").put_item(TableName=table, Item={
        "pk": {"S": f"KEY#{digest}"}, "sk": {"S": "KEY"}, "tenant": {"S": tenant},
        "created_at": {"N": str(int(time.time() * 1000))},
    })


def new_key():
    return "sb_" + secrets.token_hex(32)


def prepare():
    s3 = client("s3")
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if BUCKET not in existing:
        s3.create_bucket(Bucket=BUCKET)
    ssm = client("ssm")
    try:
        ssm.get_parameter(Name=CRUX_KEY_PARAMETER, WithDecryption=True)
    except ssm.exceptions.ParameterNotFound:
        ssm.put_parameter(Name=CRUX_KEY_PARAMETER, Type="SecureString", Value="local-" + secrets.token_hex(16))


def stack_parameters():
    stacks = client("cloudformation").describe_stacks(StackName=STACK)["Stacks"]
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stacks[0].get("Parameters", [])}


def crux_values():
    """Where the stack's analyzers find field data, for the tests' and the bench's fake."""
    params = stack_parameters()
    name = params.get("CruxApiKeyParameter", "")
    if not name:
        return {}
    key = client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    return {"CRUX_ENDPOINT": params.get("CruxEndpoint", ""), "CRUX_KEY": key}


def finish():
    out = outputs()
    api_url = f"{ENDPOINT}/_aws/execute-api/{out['ApiId']}"
    # The emulator serves the WebSocket API under the same endpoint, by path.
    ws_url = "ws" + ENDPOINT.removeprefix("http") + f"/_aws/execute-api/{out['WebSocketApiId']}/live"
    previous = read_env()
    # Re-use the dev key across re-deploys: the table survives an update, and clients keep working.
    key = previous.get("API_KEY") or new_key()
    store_key(out["TableName"], key, "dev")
    values = {
        "STACK_NAME": STACK,
        "API_URL": api_url,
        "API_KEY": key,
        "WS_URL": ws_url,
        "TABLE_NAME": out["TableName"],
        "HIGH_QUEUE_URL": out["HighQueueUrl"],
        "NORMAL_QUEUE_URL": out["NormalQueueUrl"],
        "LOW_QUEUE_URL": out["LowQueueUrl"],
        "EVENT_BUS_NAME": out["EventBusName"],
        "HIGH_DLQ_URL": out["HighDeadLetterQueueUrl"],
        "NORMAL_DLQ_URL": out["NormalDeadLetterQueueUrl"],
        "LOW_DLQ_URL": out["LowDeadLetterQueueUrl"],
        "BROWSER_QUEUE_URL": out["BrowserQueueUrl"],
        "BROWSER_DLQ_URL": out["BrowserDeadLetterQueueUrl"],
        "EXPORT_QUEUE_URL": out["ExportQueueUrl"],
        "EXPORTS_BUCKET": out["ExportsBucketName"],
        "CALLBACK_QUEUE_URL": out["CallbackQueueUrl"],
        "ANALYZER_FUNCTION": out["AnalyzerFunctionName"],
        "SCHEDULER_FUNCTION": out["SchedulerFunctionName"],
        # Where the CLI's operator commands (redrive) send AWS calls for this local stack.
        "AWS_ENDPOINT_URL": ENDPOINT,
        "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
        **crux_values(),
    }
    STACK_ENV.parent.mkdir(exist_ok=True)
    STACK_ENV.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    print(f"API_URL={api_url}")
    print(f"API_KEY={key}")
    print(f"WS_URL={ws_url}")
    print(f"(also written to {STACK_ENV})")
    # The emulator serves the API under a path prefix and needs the slash to route it.
    print(f"dashboard: {api_url}/")


# The tenant's limits: the attribute in its TENANT#<tenant> / LIMITS item, and the values the
# service accepts (domain::tenancy::Limit::range).
LIMITS = {
    "MAX_ACTIVE_JOBS": ("max_active_jobs", 10_000),
    "MAX_URLS_PER_DAY": ("max_urls_per_day", 1_000_000_000),
    "MAX_IN_FLIGHT": ("max_in_flight", 10_000),
    "QUOTA_WEIGHT": ("quota_weight", 100),
}


def check_tenant(tenant):
    if not tenant or len(tenant) > 128 or not all(c.isalnum() or c in "-_." for c in tenant):
        sys.exit("TENANT must be 1-128 letters, digits, '-', '_' or '.'")


def asked_limits():
    """The limits named in the environment: {attribute: number, or None for `default`}."""
    asked = {}
    for variable, (attribute, most) in LIMITS.items():
        text = os.environ.get(variable, "").strip()
        if not text:
            continue
        if text == "default":
            asked[attribute] = None
        elif text.isdigit() and 1 <= int(text) <= most:
            asked[attribute] = int(text)
        else:
            sys.exit(f"{variable} must be a whole number from 1 to {most}, or default (not {text!r})")
    return asked


def set_limits(table, tenant, asked):
    item_key = {"pk": {"S": f"TENANT#{tenant}"}, "sk": {"S": "LIMITS"}}
    dynamodb = client("dynamodb")
    if asked:
        sets = {a: v for a, v in asked.items() if v is not None}
        expression = []
        if sets:
            expression.append("SET " + ", ".join(f"{a} = :{a}" for a in sets))
        removes = [a for a, v in asked.items() if v is None]
        if removes:
            expression.append("REMOVE " + ", ".join(removes))
        request = {"TableName": table, "Key": item_key, "UpdateExpression": " ".join(expression)}
        if sets:
            request["ExpressionAttributeValues"] = {f":{a}": {"N": str(v)} for a, v in sets.items()}
        dynamodb.update_item(**request)
    item = dynamodb.get_item(TableName=table, Key=item_key, ConsistentRead=True).get("Item", {})
    own = {attribute: int(item[attribute]["N"]) for attribute, _ in LIMITS.values() if attribute in item}
    shown = ", ".join(f"{a}={v}" for a, v in own.items()) or "none: the deployment's defaults apply"
    print(f"tenant {tenant}'s own limits: {shown}")


def key(tenant):
    check_tenant(tenant)
    asked = asked_limits()
    out = outputs()
    k = new_key()
    store_key(out["TableName"], k, tenant)
    print(f"API_KEY={k}  (tenant {tenant}; shown once, only its SHA-256 is stored)")
    if asked:
        set_limits(out["TableName"], tenant, asked)


def limits(tenant):
    check_tenant(tenant)
    set_limits(outputs()["TableName"], tenant, asked_limits())


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "prepare":
        prepare()
    elif command == "finish":
        finish()
    elif command == "key" and len(sys.argv) == 3:
        key(sys.argv[2])
    elif command == "limits" and len(sys.argv) == 3:
        limits(sys.argv[2])
    else:
        sys.exit(__doc__)
