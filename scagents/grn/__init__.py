"""scagents.grn"""
