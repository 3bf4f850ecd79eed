from django.apps import AppConfig


class DbmergeConfig(AppConfig):
    name = "dbmerge"
    verbose_name = "External database jobs"
