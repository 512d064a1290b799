"""Reading run folders: statistics, reports and plots."""
