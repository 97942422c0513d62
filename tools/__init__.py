"""Product tools over the core: inspect, check, calibrate, plan, patch, evaluate, select."""
