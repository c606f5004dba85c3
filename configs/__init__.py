"""The shipped YAML configs (one per method, simulator, question set and training run). Installed as the
package data of `eqa.configs`, so installed and source checkouts find them the same way
(`eqa.config.find_config`)."""
