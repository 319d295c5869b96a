METRIC = "sibling_metric"
