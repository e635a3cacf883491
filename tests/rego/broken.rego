package apis.platform.assistant

# Deliberately broken (tests/test_opa.py): a rule body never closed.
allow if {
