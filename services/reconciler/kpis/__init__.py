"""KPIs of contract §4 (QĐ 766): pure formulas, the per-unit queries and ``GET /api/v1/kpis``."""
