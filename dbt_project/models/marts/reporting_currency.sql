{#-
    The currency every money column of the marts is in, recorded with the data dbt built:
    the report and the assets label money with this, never with the environment at read
    time (money is converted once, here in dbt; see macros/money.sql).
-#}

select cast('{{ triangulate.reporting_currency() }}' as {{ dbt.type_string() }}) as currency
