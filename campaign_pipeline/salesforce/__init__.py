"""The live Salesforce source: a small REST query client (``client.py``) and the mapping of
Lead, CampaignMember, Opportunity and LeadHistory records to the raw leads and status-change
contract (``leads.py``). Pure Python and pandas; the Dagster resource that uses them is
``campaign_pipeline/resources/salesforce.py``."""
