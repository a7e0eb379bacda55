# No Python code: OCA server_environment imports this package only to find its
# directory, then reads default/*.conf and <running_env>/*.conf.
