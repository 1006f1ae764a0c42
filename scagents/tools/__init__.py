"""scagents.tools"""
