"""Tern: a made-up third CRM, packaged as a third party would package a crmbridge connector."""
