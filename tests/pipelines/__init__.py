"""User-pipeline fixture modules: functions written as users write them."""
