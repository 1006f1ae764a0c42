"""scagents.twin"""
