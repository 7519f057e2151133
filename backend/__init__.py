"""credagg backend: the API, the Celery worker and the domain packages they serve."""
