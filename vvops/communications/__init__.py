"""External and crisis communication: public statements drafted from templates, approved, then published."""
