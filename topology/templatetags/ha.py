"""Template tags for the HA panel of a group page and the SRM alarms on the dashboard."""

from django import template

from topology.ha.panel import group_ha_context
from topology.observed import recent_alarms

register = template.Library()


@register.inclusion_tag("topology/ha/_group_ha.html", takes_context=True)
def group_ha_panel(context, group):
    """``{% group_ha_panel object %}``: node states, Server Action buttons and the timeline."""
    return {**group_ha_context(group, context["request"].user), "csrf_token": context.get("csrf_token")}


@register.inclusion_tag("topology/ha/_alarms.html")
def recent_alarms_panel(limit: int = 8):
    """``{% recent_alarms_panel %}``: the newest SRM alarms (UC_SRM-2-SRMFailover …)."""
    return {"alarms": recent_alarms(limit)}
