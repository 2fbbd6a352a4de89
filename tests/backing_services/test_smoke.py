"""Each backing service that `make services` starts answers a real round trip.

These fail, never skip, when a service is down: the suite runs against real servers only.
"""

import uuid

import pytest
import redis
import requests
from confluent_kafka import Consumer, Producer
from django.conf import settings
from django.db import connection
from elasticsearch import Elasticsearch

pytestmark = pytest.mark.integration


@pytest.mark.django_db
def test_postgresql_is_the_database():
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        (version,) = cursor.fetchone()

    assert connection.vendor == "postgresql"
    assert version.startswith("PostgreSQL")


def test_redis_keeps_data_and_never_evicts():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert client.config_get("appendonly") == {"appendonly": "yes"}


def test_kafka_round_trip():
    topic = f"dts-smoke-{uuid.uuid4().hex[:8]}"
    payload = uuid.uuid4().bytes
    producer = Producer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "enable.idempotence": True,
            "acks": "all",
        }
    )
    producer.produce(topic, key=b"smoke", value=payload)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": topic,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    try:
        received = None
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                received = message.value()
                break
    finally:
        consumer.close()

    assert received == payload


def test_elasticsearch_round_trip():
    client = Elasticsearch(settings.ELASTICSEARCH_URL, request_timeout=30)
    index = f"dts-smoke-{uuid.uuid4().hex[:8]}"
    try:
        client.index(
            index=index, id="1", document={"line": "worker started run"}, refresh="wait_for"
        )

        hits = client.search(index=index, query={"match": {"line": "started"}})["hits"]["hits"]
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)

    # The integ-test-zip build answers no `GET /`, so the version comes from the nodes API.
    versions = [node["version"] for node in client.nodes.info()["nodes"].values()]
    assert [hit["_id"] for hit in hits] == ["1"]
    assert [version.split(".")[0] for version in versions] == ["9"]


def test_prometheus_answers_queries():
    ready = requests.get(f"{settings.PROMETHEUS_URL}/-/ready", timeout=10)
    query = requests.get(
        f"{settings.PROMETHEUS_URL}/api/v1/query", params={"query": "1+1"}, timeout=10
    )

    assert ready.status_code == 200
    assert query.json()["data"]["result"][1] == "2"
