"""Serving live endpoints: loading model versions (loader), MLflow's scoring protocol
(protocol) and the `/serve/<endpoint>/…` views."""
