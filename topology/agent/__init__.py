"""The node agent: the process that is an IM and Presence node (``manage.py run_node``)."""
