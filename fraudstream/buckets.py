"""Emptying a bucket, every version of every object: the stack's custom resource does it when the stack is
deleted (lambdas/stack_resources/handler.py), `fraudstream cleanup` when a deletion stopped half way
(fraudstream/operate/cleanup.py). A root module, so the custom resource's asset ships it beside its handler."""

from __future__ import annotations

from botocore.exceptions import ClientError

PAGE = 1000  # ListObjectVersions returns and DeleteObjects takes 1,000 keys at most


class BucketNotEmptied(RuntimeError):
    """S3 refused to delete some of the bucket's objects."""


def empty_bucket(s3, name: str) -> int:
    """Delete every version and delete marker in bucket ``name`` (versioned or not) with the S3 client ``s3``;
    returns how many. A bucket that is gone already counts as empty (0).

    Each round lists the first page again instead of following the listing's markers: a marker names a
    version this loop has just deleted, after which a listing may resume nowhere (moto returns nothing,
    which left boto3's batch action `object_versions.delete()` 205 objects short of 1,205)."""
    deleted = 0
    try:
        while True:
            page = s3.list_object_versions(Bucket=name, MaxKeys=PAGE)
            keys = [{"Key": item["Key"], "VersionId": item["VersionId"]}
                    for item in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if not keys:
                return deleted
            for start in range(0, len(keys), PAGE):  # versions and markers together may exceed one request
                chunk = keys[start:start + PAGE]
                answer = s3.delete_objects(Bucket=name, Delete={"Objects": chunk, "Quiet": True})
                if answer.get("Errors"):
                    raise BucketNotEmptied(f"could not delete {len(answer['Errors'])} objects from {name}: "
                                           f"{answer['Errors'][0].get('Message')}")
                deleted += len(chunk)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return deleted
        raise
