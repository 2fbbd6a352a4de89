import pytest
from django.db import connection

from apps.core.db import execute_prepared

pytestmark = pytest.mark.django_db


def test_a_prepared_statement_is_prepared_once_per_session(django_assert_num_queries):
    sql = "SELECT %s::int + %s::int"
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, [1, 2])
        assert cursor.fetchone() == (3,)

    with django_assert_num_queries(1), connection.cursor() as cursor:
        execute_prepared(cursor, sql, [2, 3])
        assert cursor.fetchone() == (5,)


@pytest.mark.django_db(transaction=True)
def test_a_new_session_prepares_it_again():
    sql = "SELECT %s::text || 'b'"
    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, ["a"])
    connection.close()  # as after a database restart: a new session, with nothing prepared

    with connection.cursor() as cursor:
        execute_prepared(cursor, sql, ["x"])
        assert cursor.fetchone() == ("xb",)
